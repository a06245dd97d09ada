variable "nodes" {
  description = "GPU nodes by name: flavor or instance type, GPU count, disk sizes (GB), image."
  type = map(object({
    flavor          = string
    gpu_count       = number
    root_disk_gb    = optional(number, 100)
    scratch_disk_gb = optional(number, 0)
    image           = string
  }))

  validation {
    condition     = length(var.nodes) > 0
    error_message = "nodes: at least one GPU node is required."
  }
  validation {
    condition     = alltrue([for name, n in var.nodes : can(regex("^[a-z][a-z0-9-]{0,62}$", name))])
    error_message = "nodes: names must be lower-case host names (a-z, 0-9, '-', starting with a letter); got ${join(", ", keys(var.nodes))}."
  }
  validation {
    condition     = alltrue([for n in var.nodes : n.gpu_count >= 1 && floor(n.gpu_count) == n.gpu_count])
    error_message = "nodes: gpu_count must be a whole number of at least 1 on every node (these are GPU nodes); got ${jsonencode({ for k, n in var.nodes : k => n.gpu_count })}."
  }
  validation {
    condition     = alltrue([for n in var.nodes : n.root_disk_gb >= 30 && n.scratch_disk_gb >= 0])
    error_message = "nodes: root_disk_gb must be at least 30 (the notebook image alone needs several GB) and scratch_disk_gb 0 or more."
  }
  validation {
    condition     = alltrue([for n in var.nodes : trimspace(n.flavor) != "" && trimspace(n.image) != ""])
    error_message = "nodes: flavor and image must not be empty."
  }
}

variable "ssh_public_key" {
  description = "Public key Ansible logs in with (OpenSSH format). Only the public half: never a private key."
  type        = string

  validation {
    condition     = can(regex("^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( .*)?$", trimspace(var.ssh_public_key)))
    error_message = "ssh_public_key must be one OpenSSH public key line (ssh-ed25519/ssh-rsa/ecdsa-sha2-*); a private key or anything else is refused."
  }
}

variable "admin_user" {
  description = "Account created by cloud-init for Ansible (sudo, key login only)."
  type        = string
  default     = "gxnb"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,31}$", var.admin_user))
    error_message = "admin_user must be a POSIX user name."
  }
}

variable "scratch_device" {
  description = "Block device of the scratch volume inside the instance."
  type        = string
  default     = "/dev/vdb"
}

variable "scratch_mount_point" {
  description = "Where the scratch volume is mounted (Docker data and job working directories)."
  type        = string
  default     = "/scratch"
}

variable "extra_ca_certificates" {
  description = "PEM CA certificates the nodes trust (public certificates, never keys)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.extra_ca_certificates : can(regex("-----BEGIN CERTIFICATE-----", c)) && !can(regex("PRIVATE KEY", c))])
    error_message = "extra_ca_certificates: each entry must be a PEM certificate and contain no private key."
  }
}

variable "ssh_allowed_cidrs" {
  description = "Networks allowed to reach SSH on the nodes (the Ansible controller's)."
  type        = list(string)

  validation {
    condition     = length(var.ssh_allowed_cidrs) > 0 && alltrue([for c in var.ssh_allowed_cidrs : can(cidrhost(c, 0))])
    error_message = "ssh_allowed_cidrs: give at least one CIDR (for example 203.0.113.10/32)."
  }
  validation {
    condition     = !anytrue([for c in var.ssh_allowed_cidrs : contains(["0.0.0.0/0", "::/0"], c)])
    error_message = "ssh_allowed_cidrs: SSH open to the world (0.0.0.0/0 or ::/0) is refused; name the controller's network."
  }
}

variable "addresses" {
  description = "Address Ansible reaches each node on, by node name (set by the cloud module from its instances)."
  type        = map(string)
  default     = {}
}

variable "galaxy_server" {
  description = "The Galaxy server the nodes serve (an existing host), placed in the galaxy_servers group."
  type = object({
    name    = string
    address = string
  })
  default = null
}
