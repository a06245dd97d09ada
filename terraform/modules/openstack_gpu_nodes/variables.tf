variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "gxnb"
}

variable "nodes" {
  description = "GPU nodes by name: flavor (a GPU flavor), gpu_count, disk sizes (GB), image name."
  type = map(object({
    flavor          = string
    gpu_count       = number
    root_disk_gb    = optional(number, 100)
    scratch_disk_gb = optional(number, 500)
    image           = string
  }))

  validation {
    condition     = alltrue([for n in var.nodes : n.gpu_count >= 1])
    error_message = "nodes: gpu_count must be at least 1 on every node; got ${jsonencode({ for k, n in var.nodes : k => n.gpu_count })}."
  }
  validation {
    condition     = alltrue([for n in var.nodes : can(regex(var.gpu_flavor_pattern, n.flavor))])
    error_message = "nodes: every flavor must be a GPU flavor (matching gpu_flavor_pattern); got ${join(", ", [for k, n in var.nodes : "${k}=${n.flavor}"])}."
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

variable "ssh_public_key" {
  description = "Public key for the Ansible login (OpenSSH format)."
  type        = string
}

variable "ssh_allowed_cidrs" {
  description = "Networks allowed to reach SSH (the Ansible controller's). Never 0.0.0.0/0."
  type        = list(string)

  validation {
    condition     = !anytrue([for c in var.ssh_allowed_cidrs : contains(["0.0.0.0/0", "::/0"], c)])
    error_message = "ssh_allowed_cidrs: SSH open to the world (0.0.0.0/0 or ::/0) is refused; name the controller's network."
  }
}

variable "galaxy_server_cidrs" {
  description = "Networks of the Galaxy server and gx-it-proxy (interactive-tool ports)."
  type        = list(string)
  default     = []
}

variable "interactive_tool_ports" {
  description = "Port range Docker publishes interactive-tool containers on (from <= to, both within 1024-65535)."
  type = object({
    from = number
    to   = number
  })
  default  = { from = 32768, to = 60999 }
  nullable = false

  validation {
    condition = (
      floor(var.interactive_tool_ports.from) == var.interactive_tool_ports.from &&
      floor(var.interactive_tool_ports.to) == var.interactive_tool_ports.to &&
      var.interactive_tool_ports.from >= 1024 && var.interactive_tool_ports.to <= 65535 &&
      var.interactive_tool_ports.from <= var.interactive_tool_ports.to
    )
    error_message = "interactive_tool_ports: need whole port numbers with 1024 <= from <= to <= 65535 (unprivileged ports; Docker's default is 32768-60999); got from = ${var.interactive_tool_ports.from}, to = ${var.interactive_tool_ports.to}."
  }
}

variable "galaxy_server" {
  description = "The Galaxy server (existing host) for the inventory's galaxy_servers group."
  type = object({
    name    = string
    address = string
  })
  default = null
}

variable "extra_ca_certificates" {
  description = "PEM CA certificates the nodes trust."
  type        = list(string)
  default     = []
}

variable "metadata" {
  description = "Metadata on every instance."
  type        = map(string)
  default     = {}
}
