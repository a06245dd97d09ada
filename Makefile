# Two commands on a fresh Debian 12 machine:
#   make deploy-local   deploy the whole service locally
#   make test           run every test (lint, unit, Molecule, image, end to end)
SHELL := /bin/bash
.DEFAULT_GOAL := help

help:
	@echo "make deploy-local   deploy the whole service on this machine"
	@echo "make destroy-local  remove it (keeps .deploy-local/secrets.yml; GXNB_DESTROY_ALL=1: that too)"
	@echo "make test           run all tests (deploys locally first)"
	@echo "make lint           linters only"
	@echo "make rollout TAG=1.0.1-cpu [IMAGE=gxnb/jupyterlab-ai:cpu]   roll a notebook image out (local)"
	@echo "make rollback       back to the image before the last rollout (local)"

deploy-local:
	scripts/deploy-local.sh

destroy-local:
	scripts/destroy-local.sh

test:
	scripts/run-tests.sh

rollout:
	scripts/rollout-image.sh "$(TAG)" $(IMAGE)

rollback:
	scripts/rollout-image.sh --rollback

lint:
	GXNB_EXTRAS=deploy,test scripts/host-setup.sh
	.venv/bin/python -m pytest -q tests/lint

.PHONY: help deploy-local destroy-local test lint rollout rollback
