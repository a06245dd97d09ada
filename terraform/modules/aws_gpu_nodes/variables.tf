variable "name_prefix" {
  description = "Prefix of every resource name and the Name tag."
  type        = string
  default     = "gxnb"
}

variable "nodes" {
  description = "GPU nodes by name: instance_type (a GPU family), gpu_count, disk sizes (GB). image is ignored here (see ami_*)."
  type = map(object({
    instance_type   = string
    gpu_count       = number
    root_disk_gb    = optional(number, 100)
    scratch_disk_gb = optional(number, 200)
  }))

  validation {
    condition     = alltrue([for n in var.nodes : n.gpu_count >= 1])
    error_message = "nodes: gpu_count must be at least 1 on every node; got ${jsonencode({ for k, n in var.nodes : k => n.gpu_count })}."
  }
  validation {
    condition = alltrue([for n in var.nodes :
    can(regex("^(p3|p3dn|p4d|p4de|p5|p5e|p5en|p6-b200|g4dn|g5|g5g|g6|g6e|gr6|g4ad)\\.", n.instance_type))])
    error_message = "nodes: instance_type must be an NVIDIA GPU type (p3, p4d, p4de, p5, p5e, g4dn, g5, g6, g6e, gr6 ...); got ${join(", ", [for k, n in var.nodes : "${k}=${n.instance_type}"])}."
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

variable "ssh_public_key" {
  description = "Public key for the Ansible login (OpenSSH format)."
  type        = string
}

variable "ssh_allowed_cidrs" {
  description = "Networks allowed to reach SSH (the Ansible controller's). Never 0.0.0.0/0."
  type        = list(string)

  # The security group below opens what this list names: refuse the world here,
  # where the rule is made (the core module checks its own input too).
  validation {
    condition     = !anytrue([for c in var.ssh_allowed_cidrs : contains(["0.0.0.0/0", "::/0"], c)])
    error_message = "ssh_allowed_cidrs: SSH open to the world (0.0.0.0/0 or ::/0) is refused; name the controller's network."
  }
}

variable "galaxy_server_cidrs" {
  description = "Networks of the Galaxy server and gx-it-proxy, which reach interactive-tool ports on the nodes."
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

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
