# Example root module: GPU nodes on an OpenStack cloud (as Galaxy Europe's).
# `terraform apply` writes the Ansible inventory to var.inventory_path (by
# default inventory/generated/openstack.yml). The inputs every example shares
# and the inventory file are in common.tf.
terraform {
  required_version = ">= 1.7"
  required_providers {
    # The version constraint is the module's (modules/openstack_gpu_nodes/versions.tf).
    openstack = {
      source = "terraform-provider-openstack/openstack"
    }
  }
}

# Credentials come from clouds.yaml / OS_* environment, never from this repository.
provider "openstack" {
  cloud = var.cloud
}

variable "cloud" {
  description = "Entry of clouds.yaml to use."
  type        = string
  default     = "openstack"
}

variable "network_name" {
  description = "Network of the nodes."
  type        = string
}

module "gpu_nodes" {
  source = "../../modules/openstack_gpu_nodes"

  nodes               = { gpu-1 = { flavor = "g1.c8m40g1", gpu_count = 1, image = "Debian 12" } }
  gpu_flavor_pattern  = "^g[0-9]+\\." # flavors like g1.c8m40g1: the module's default pattern misses them
  network_name        = var.network_name
  ssh_public_key      = var.ssh_public_key
  ssh_allowed_cidrs   = var.ssh_allowed_cidrs
  galaxy_server       = var.galaxy_server
  galaxy_server_cidrs = local.galaxy_server_cidrs
}
