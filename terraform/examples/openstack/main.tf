# Example root module: GPU nodes on an OpenStack cloud (as Galaxy Europe's).
# `terraform apply` writes the Ansible inventory to var.inventory_path.
terraform {
  required_version = ">= 1.7"
  required_providers {
    openstack = {
      source  = "terraform-provider-openstack/openstack"
      version = ">= 2.0, < 4.0"
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

variable "ssh_public_key" {
  description = "Public key of the Ansible controller."
  type        = string
}

variable "ssh_allowed_cidrs" {
  description = "Controller networks allowed to SSH."
  type        = list(string)
}

variable "galaxy_server" {
  description = "Existing Galaxy server (name, address)."
  type = object({
    name    = string
    address = string
  })
  default = null
}

variable "inventory_path" {
  description = "Where apply writes the Ansible inventory."
  type        = string
  default     = "../../../inventory/generated/openstack.yml"
}

module "gpu_nodes" {
  source = "../../modules/openstack_gpu_nodes"

  network_name        = var.network_name
  ssh_public_key      = var.ssh_public_key
  ssh_allowed_cidrs   = var.ssh_allowed_cidrs
  galaxy_server       = var.galaxy_server
  galaxy_server_cidrs = var.galaxy_server == null ? [] : ["${var.galaxy_server.address}/32"]
  nodes = {
    gpu-1 = { flavor = "g1.c8m40g1", gpu_count = 1, image = "Debian 12" }
  }
}

resource "terraform_data" "inventory" {
  input = module.gpu_nodes.inventory_yaml

  provisioner "local-exec" {
    command     = "mkdir -p \"$(dirname \"$INVENTORY_PATH\")\" && printf '%s\\n' \"$INVENTORY\" > \"$INVENTORY_PATH\""
    environment = { INVENTORY = self.input, INVENTORY_PATH = var.inventory_path }
  }
}

output "inventory_path" {
  description = "The inventory file for ansible-playbook -i."
  value       = var.inventory_path
}
