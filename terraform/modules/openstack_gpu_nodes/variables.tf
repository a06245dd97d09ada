variable "site" {
  description = "Settings every cloud shares, handed to the gpu_nodes core module, which declares, checks and documents them: ssh_public_key, ssh_allowed_cidrs, galaxy_server, galaxy_server_cidrs, slurmd_port, interactive_tool_ports, extra_ca_certificates, admin_user, scratch_mount_point, name_prefix, inventory_path."
  type        = any
}

variable "nodes" {
  description = "GPU nodes by name: flavor (a GPU flavor, see gpu_flavor_pattern), gpu_count, image (name; the newest image of that name), root_disk_gb (default 100), scratch_disk_gb (default 500 here, 0 for none), on_demand (default false; true: Slurm's power saving makes it through the cloud's API when jobs wait for it, from node_image, and removes it when idle). The core module checks them."
  type        = any

  validation {
    condition     = alltrue([for n in values(var.nodes) : can(regex(var.gpu_flavor_pattern, n.flavor))])
    error_message = "nodes: every flavor must be a GPU flavor (matching gpu_flavor_pattern ${jsonencode(var.gpu_flavor_pattern)}); got ${join(", ", [for k, n in var.nodes : "${k}=${try(n.flavor, "(none)")}"])}."
  }
}

variable "gpu_flavor_pattern" {
  description = "Regular expression that GPU flavor names match at this site."
  type        = string
  default     = "(?i)(gpu|\\.g[0-9]|a100|h100|h200|l4|l40|t4|v100)"
}

variable "network_name" {
  description = "Network the nodes attach to."
  type        = string
}

variable "availability_zone" {
  description = "Availability zone of instances and volumes (null: the cloud's default)."
  type        = string
  default     = null
}

variable "volume_type" {
  description = "Block storage type of the scratch volume (null: the cloud's default)."
  type        = string
  default     = null
}

variable "metadata" {
  description = "Metadata on every instance."
  type        = map(string)
  default     = {}
}

variable "node_image" {
  description = "Image (name) of the nodes made on demand: a job node's, with the service installed, that joins Slurm when it boots. Needed only when a node is made on demand."
  type        = string
  default     = null
}

variable "cloud_name" {
  description = "The controller's clouds.yaml entry gxnb-nodes' openstack driver uses (an application credential, never in Terraform). Needed only when a node is made on demand."
  type        = string
  default     = null
}
