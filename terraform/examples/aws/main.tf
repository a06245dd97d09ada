# Example root module: GPU nodes on AWS. `terraform apply` writes the Ansible
# inventory to site.inventory_path (by default inventory/generated/aws.yml):
#   ansible-playbook -i <inventory_path> -i inventory/production ansible/site.yml
terraform {
  required_version = ">= 1.9"
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

variable "on_demand_nodes" {
  description = "GPU nodes (g5.12xlarge, 4 GPUs) that Slurm makes when jobs wait for them and removes when idle, besides gpu-1 that always runs; they need node_image_id."
  type        = number
  default     = 0
}

variable "node_image_id" {
  description = "Image of the nodes made on demand: a job node's, with the service installed (docs/cluster.md)."
  type        = string
  default     = null
}

variable "site" {
  description = "Settings every cloud shares (modules/gpu_nodes/README.md): at least ssh_public_key, ssh_allowed_cidrs and galaxy_server = { name, address }."
  type        = any
}

module "gpu_nodes" {
  source = "../../modules/aws_gpu_nodes"

  nodes = merge(
    { gpu-1 = { instance_type = "g5.2xlarge", gpu_count = 1 } },
    { for i in range(var.on_demand_nodes) : "gpu-${i + 2}" => { instance_type = "g5.12xlarge", gpu_count = 4, on_demand = true } },
  )
  node_image_id = var.node_image_id
  vpc_id        = var.vpc_id
  subnet_id     = var.subnet_id
  site          = merge(var.site, { inventory_path = coalesce(try(var.site.inventory_path, null), "../../../inventory/generated/aws.yml") })
}

output "inventory_path" {
  description = "The inventory file for ansible-playbook -i."
  value       = module.gpu_nodes.core.inventory_path
}

output "controller_policy_arn" {
  description = "Attach this IAM policy to the Galaxy server's instance role: gxnb-nodes makes and removes the nodes made on demand and stores the munge key with it (null without such nodes)."
  value       = module.gpu_nodes.controller_policy_arn
}
