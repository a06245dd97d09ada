# Example root module: GPU nodes on AWS. `terraform apply` writes the Ansible
# inventory to var.inventory_path (by default inventory/generated/aws.yml):
#   ansible-playbook -i <inventory_path> -i inventory/production ansible/site.yml
# The inputs every example shares and the inventory file are in common.tf.
terraform {
  required_version = ">= 1.7"
  required_providers {
    # The version constraint is the module's (modules/aws_gpu_nodes/versions.tf).
    aws = {
      source = "hashicorp/aws"
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

module "gpu_nodes" {
  source = "../../modules/aws_gpu_nodes"

  nodes               = { gpu-1 = { instance_type = "g5.2xlarge", gpu_count = 1 } }
  vpc_id              = var.vpc_id
  subnet_id           = var.subnet_id
  ssh_public_key      = var.ssh_public_key
  ssh_allowed_cidrs   = var.ssh_allowed_cidrs
  galaxy_server       = var.galaxy_server
  galaxy_server_cidrs = local.galaxy_server_cidrs
}

output "inventory_yaml" {
  description = "The inventory."
  value       = module.gpu_nodes.inventory_yaml
}
