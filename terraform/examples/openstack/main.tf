# Example root module: GPU nodes on an OpenStack cloud (as Galaxy Europe's).
# `terraform apply` writes the Ansible inventory to site.inventory_path (by
# default inventory/generated/openstack.yml).
terraform {
  required_version = ">= 1.9"
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

variable "site" {
  description = "Settings every cloud shares (modules/gpu_nodes/README.md): at least ssh_public_key, ssh_allowed_cidrs and galaxy_server = { name, address }."
  type        = any
}

module "gpu_nodes" {
  source = "../../modules/openstack_gpu_nodes"

  nodes              = { gpu-1 = { flavor = "g1.c8m40g1", gpu_count = 1, image = "Debian 12" } }
  gpu_flavor_pattern = "^g[0-9]+\\." # flavors like g1.c8m40g1: the module's default pattern misses them
  network_name       = var.network_name
  site               = merge(var.site, { inventory_path = coalesce(try(var.site.inventory_path, null), "../../../inventory/generated/openstack.yml") })
}

output "inventory_path" {
  description = "The inventory file for ansible-playbook -i."
  value       = module.gpu_nodes.core.inventory_path
}
