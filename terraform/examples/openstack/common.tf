# The part every example root module shares: the settings every cloud needs and
# the inventory file. Terraform has no include, so each example carries this file;
# tests/terraform/test_terraform.py keeps the copies identical. The example defines
# module "gpu_nodes" (with an inventory_yaml output).

variable "ssh_public_key" {
  description = "Public key of the Ansible controller."
  type        = string
}

variable "ssh_allowed_cidrs" {
  description = "Controller networks allowed to SSH."
  type        = list(string)
}

variable "galaxy_server" {
  description = "Existing Galaxy server (name, address); only its address reaches the interactive-tool ports."
  type        = object({ name = string, address = string })
  default     = null
}

variable "inventory_path" {
  description = "Where apply writes the Ansible inventory (null: inventory/generated/<example's folder name>.yml in this repository)."
  type        = string
  default     = null
}

locals {
  galaxy_server_cidrs = var.galaxy_server == null ? [] : ["${var.galaxy_server.address}/32"]
  inventory_path      = coalesce(var.inventory_path, "../../../inventory/generated/${basename(abspath(path.root))}.yml")
}

# Written on apply, re-written when the inventory changes (no extra provider needed).
module "inventory_file" {
  source = "../../modules/inventory_file"

  inventory_yaml = module.gpu_nodes.inventory_yaml
  path           = local.inventory_path
}

output "inventory_path" {
  description = "The inventory file for ansible-playbook -i."
  value       = module.inventory_file.path
}
