# Example root module: GPU nodes on AWS. `terraform apply` writes the Ansible
# inventory to var.inventory_path:
#   ansible-playbook -i <inventory_path> -i inventory/production ansible/site.yml
terraform {
  required_version = ">= 1.7"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 6.0"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-central-1"
}

variable "vpc_id" {
  description = "VPC of the nodes."
  type        = string
}

variable "subnet_id" {
  description = "Subnet of the nodes."
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
  default     = "../../../inventory/generated/aws.yml"
}

module "gpu_nodes" {
  source = "../../modules/aws_gpu_nodes"

  vpc_id              = var.vpc_id
  subnet_id           = var.subnet_id
  ssh_public_key      = var.ssh_public_key
  ssh_allowed_cidrs   = var.ssh_allowed_cidrs
  galaxy_server       = var.galaxy_server
  galaxy_server_cidrs = var.galaxy_server == null ? [] : ["${var.galaxy_server.address}/32"]
  nodes = {
    gpu-1 = { instance_type = "g5.2xlarge", gpu_count = 1 }
  }
}

# Written by a provisioner (no extra provider needed); re-written when it changes.
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

output "inventory_yaml" {
  description = "The inventory."
  value       = module.gpu_nodes.inventory_yaml
}
