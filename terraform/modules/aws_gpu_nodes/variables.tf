variable "site" {
  description = "Settings every cloud shares, handed to the gpu_nodes core module, which declares, checks and documents them: ssh_public_key, ssh_allowed_cidrs, galaxy_server, galaxy_server_cidrs, slurmd_port, interactive_tool_ports, extra_ca_certificates, admin_user, scratch_mount_point, name_prefix, inventory_path."
  type        = any
}

variable "nodes" {
  description = "GPU nodes by name: instance_type (an NVIDIA GPU type), gpu_count, root_disk_gb (default 100), scratch_disk_gb (default 200 here, 0 for none), on_demand (default false; true: Slurm's power saving launches it from a launch template when jobs wait for it, and terminates it when idle). The core module checks them; the image comes from ami_* (node_image_id for nodes made on demand)."
  type        = any

  validation {
    condition     = alltrue([for n in values(var.nodes) : can(regex("^(p3|p3dn|p4d|p4de|p5|p5e|p5en|p6-b200|g4dn|g5|g5g|g6|g6e|gr6|g4ad)\\.", n.instance_type))])
    error_message = "nodes: instance_type must be an NVIDIA GPU type (p3, p4d, p4de, p5, p5e, g4dn, g5, g6, g6e, gr6 ...); got ${join(", ", [for k, n in var.nodes : "${k}=${try(n.instance_type, "(none)")}"])}."
  }
}

variable "ami_owners" {
  description = "Owners of the image (Debian's account by default)."
  type        = list(string)
  default     = ["136693071363"]
}

variable "ami_name_filter" {
  description = "Image name pattern; the newest match is used."
  type        = string
  default     = "debian-12-amd64-*"
}

variable "subnet_id" {
  description = "Subnet of the nodes."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the security group."
  type        = string
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}

variable "node_image_id" {
  description = "Image of the nodes made on demand (on_demand = true): a job node's, with the service installed, that joins Slurm when it boots. Needed only when a node is made on demand."
  type        = string
  default     = null

  validation {
    condition     = var.node_image_id == null || can(regex("^ami-[0-9a-f]{8,17}$", var.node_image_id))
    error_message = "node_image_id: must be an AMI id (ami- and 8 or 17 hex digits); got ${jsonencode(var.node_image_id)}."
  }
}

variable "secrets_kms_key_id" {
  description = "KMS key (ARN or id) that encrypts the munge key's secret for the nodes made on demand; null: the account's default key for Secrets Manager."
  type        = string
  default     = null

  validation {
    condition     = var.secrets_kms_key_id == null || can(regex("^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/.+|[0-9a-f-]{36}|alias/.+)$", var.secrets_kms_key_id))
    error_message = "secrets_kms_key_id: must be a KMS key ARN, key id or alias/...; got ${jsonencode(var.secrets_kms_key_id)}."
  }
}
