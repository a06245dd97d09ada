# Offline: a mock AWS provider; the inventory file is really written (by the
# core module through modules/inventory_file), under .terraform/ (ignored by git).
mock_provider "aws" {
  mock_data "aws_ami" {
    defaults = { id = "ami-0123456789abcdef0" }
  }
  mock_resource "aws_instance" {
    defaults = { private_ip = "10.20.0.15" }
  }
  mock_resource "aws_launch_template" {
    defaults = { id = "lt-0123456789abcdef0" }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:gxnb-munge-key-AbCdEf" }
  }
  mock_resource "aws_iam_instance_profile" {
    defaults = { arn = "arn:aws:iam::123456789012:instance-profile/gxnb-node-1" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/gxnb-node-1" }
  }
  mock_resource "aws_iam_policy" {
    defaults = { arn = "arn:aws:iam::123456789012:policy/gxnb-controller-1" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-central-1" }
  }
  mock_data "aws_subnet" {
    defaults = { cidr_block = "10.20.0.0/24" }
  }
  mock_data "aws_ec2_instance_type" {
    defaults = { default_vcpus = 48, memory_size = 196608 }
  }
}

variables {
  vpc_id          = "vpc-0abc"
  subnet_id       = "subnet-0abc"
  on_demand_nodes = 1 # gpu-2: the inventory has a node made on demand too
  node_image_id   = "ami-0fedcba9876543210"
  site = {
    ssh_public_key    = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKqv2G3dVw0Jmx8rj6RRX3zOP4HVo3Ea2t6mT5j4a7nZ ansible@controller"
    ssh_allowed_cidrs = ["203.0.113.10/32"]
    galaxy_server     = { name = "galaxy", address = "10.20.0.2" }
    inventory_path    = ".terraform/tftest/generated/aws.yml"
  }
}

run "apply_writes_the_inventory" {
  command = apply

  assert {
    condition     = yamldecode(module.gpu_nodes.core.inventory_yaml).all.children.gpu_nodes.hosts["gpu-1"].ansible_host == "10.20.0.15"
    error_message = "inventory must hold the node"
  }
  assert {
    condition     = output.inventory_path == var.site.inventory_path
    error_message = "the inventory goes to site.inventory_path"
  }
  assert {
    condition     = fileexists(output.inventory_path) && jsonencode(yamldecode(file(output.inventory_path))) == jsonencode(module.gpu_nodes.core.inventory)
    error_message = "apply must write the inventory to inventory_path"
  }
}

run "default_inventory_path_is_named_after_the_example" {
  command = plan

  variables {
    site = merge(var.site, { inventory_path = null })
  }

  assert {
    condition     = module.gpu_nodes.core.site.inventory_path == "../../../inventory/generated/aws.yml"
    error_message = "by default the inventory goes to inventory/generated/<example>.yml, got ${module.gpu_nodes.core.site.inventory_path}"
  }
}
