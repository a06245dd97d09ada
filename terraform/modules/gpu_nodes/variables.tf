# The settings every cloud shares, declared and validated here only: the cloud
# modules take them as one `site` object and hand it over as it is.
variable "site" {
  description = "Settings every cloud shares: the Ansible login (ssh_public_key, admin_user, ssh_allowed_cidrs), the Galaxy server the nodes serve and the networks it reaches them from (galaxy_server, galaxy_server_cidrs), the ports opened to it (slurmd_port, interactive_tool_ports, metrics_ports), extra_ca_certificates, scratch_mount_point, name_prefix and inventory_path (where apply writes the Ansible inventory; null: not written)."
  type = object({
    ssh_public_key         = string
    ssh_allowed_cidrs      = list(string)
    galaxy_server          = optional(object({ name = string, address = string }))
    galaxy_server_cidrs    = optional(list(string), [])
    slurmd_port            = optional(number, 6818)
    interactive_tool_ports = optional(object({ from = number, to = number }), { from = 32768, to = 60999 })
    metrics_ports          = optional(object({ node = number, gpu = number }), { node = 9100, gpu = 9835 })
    extra_ca_certificates  = optional(list(string), [])
    admin_user             = optional(string, "gxnb")
    scratch_mount_point    = optional(string, "/scratch")
    name_prefix            = optional(string, "gxnb")
    inventory_path         = optional(string)
  })
  nullable = false

  validation {
    condition     = can(regex("^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( .*)?$", trimspace(var.site.ssh_public_key)))
    error_message = "site.ssh_public_key: must be one OpenSSH public key line (ssh-ed25519, ssh-rsa or ecdsa-sha2-nistp256/384/521, then the base64 key); got ${strcontains(var.site.ssh_public_key, "PRIVATE KEY") ? "a private key, which is refused" : "a line starting with ${jsonencode(substr(trimspace(var.site.ssh_public_key), 0, 12))}"}."
  }
  validation {
    condition     = length(var.site.ssh_allowed_cidrs) > 0
    error_message = "site.ssh_allowed_cidrs: give at least one network, the Ansible controller's (such as 203.0.113.10/32); got none."
  }
  validation {
    condition     = !anytrue([for c in concat(var.site.ssh_allowed_cidrs, var.site.galaxy_server_cidrs) : can(regex("/0+$", c))])
    error_message = "site.ssh_allowed_cidrs, site.galaxy_server_cidrs: ingress open to the world (a /0 network such as 0.0.0.0/0 or ::/0) is refused; name the controller's and the Galaxy server's networks; got ssh_allowed_cidrs = ${jsonencode(var.site.ssh_allowed_cidrs)}, galaxy_server_cidrs = ${jsonencode(var.site.galaxy_server_cidrs)}."
  }
  validation {
    condition     = alltrue([for c in concat(var.site.ssh_allowed_cidrs, var.site.galaxy_server_cidrs) : can(cidrnetmask(c)) && try(cidrsubnet(c, 0, 0) == c, false)])
    error_message = "site.ssh_allowed_cidrs, site.galaxy_server_cidrs: each entry must be an IPv4 network in CIDR form written with its network address (such as 203.0.113.10/32 or 10.20.0.0/24, not 10.20.0.5/24); got ssh_allowed_cidrs = ${jsonencode(var.site.ssh_allowed_cidrs)}, galaxy_server_cidrs = ${jsonencode(var.site.galaxy_server_cidrs)}."
  }
  validation {
    condition     = length(var.site.galaxy_server_cidrs) > 0 || can(cidrnetmask("${var.site.galaxy_server.address}/32"))
    error_message = "site: give galaxy_server with an IPv4 address (opened as <address>/32) or galaxy_server_cidrs, since slurmd and the interactive-tool ports open to the Galaxy server only; got galaxy_server = ${jsonencode(var.site.galaxy_server)}, galaxy_server_cidrs = []."
  }
  validation {
    condition = (
      floor(var.site.interactive_tool_ports.from) == var.site.interactive_tool_ports.from &&
      floor(var.site.interactive_tool_ports.to) == var.site.interactive_tool_ports.to &&
      var.site.interactive_tool_ports.from >= 1024 && var.site.interactive_tool_ports.to <= 65535 &&
      var.site.interactive_tool_ports.from <= var.site.interactive_tool_ports.to
    )
    error_message = "site.interactive_tool_ports: need whole port numbers with 1024 <= from <= to <= 65535 (unprivileged ports; Docker's default is 32768-60999); got from = ${var.site.interactive_tool_ports.from}, to = ${var.site.interactive_tool_ports.to}."
  }
  validation {
    condition = (
      floor(var.site.slurmd_port) == var.site.slurmd_port && var.site.slurmd_port >= 1 && var.site.slurmd_port <= 65535 &&
      (var.site.slurmd_port < var.site.interactive_tool_ports.from || var.site.slurmd_port > var.site.interactive_tool_ports.to)
    )
    error_message = "site.slurmd_port: must be a whole port number 1-65535 outside interactive_tool_ports (${var.site.interactive_tool_ports.from}-${var.site.interactive_tool_ports.to}, where Docker publishes containers) and the same as SlurmdPort in slurm.conf (6818 by default); got ${var.site.slurmd_port}."
  }
  validation {
    condition = alltrue([for p in values(var.site.metrics_ports) :
      floor(p) == p && p >= 1 && p <= 65535 && p != var.site.slurmd_port &&
      (p < var.site.interactive_tool_ports.from || p > var.site.interactive_tool_ports.to)
    ]) && var.site.metrics_ports.node != var.site.metrics_ports.gpu
    error_message = "site.metrics_ports: node and gpu (the node and GPU exporters, scraped by Prometheus on the Galaxy server) must be two different whole port numbers 1-65535, neither slurmd_port nor in interactive_tool_ports; got ${jsonencode(var.site.metrics_ports)}."
  }
  validation {
    condition     = alltrue([for c in var.site.extra_ca_certificates : can(regex("-----BEGIN CERTIFICATE-----", c)) && !strcontains(c, "PRIVATE KEY")])
    error_message = "site.extra_ca_certificates: each entry must be a PEM certificate (-----BEGIN CERTIFICATE-----) and hold no private key; entries ${jsonencode([for i, c in var.site.extra_ca_certificates : i if !can(regex("-----BEGIN CERTIFICATE-----", c)) || strcontains(c, "PRIVATE KEY")])} are not."
  }
  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,31}$", var.site.admin_user))
    error_message = "site.admin_user: must be a POSIX user name (a-z, 0-9, '_', '-', starting with a letter or '_', at most 32 characters); got ${jsonencode(var.site.admin_user)}."
  }
  validation {
    condition     = can(regex("^/[^\\s]*[^/\\s]$", var.site.scratch_mount_point))
    error_message = "site.scratch_mount_point: must be an absolute path without spaces or a trailing '/', such as /scratch; got ${jsonencode(var.site.scratch_mount_point)}."
  }
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,31}$", var.site.name_prefix))
    error_message = "site.name_prefix: must be 1-32 characters a-z, 0-9, '-', starting with a letter (it starts every resource name); got ${jsonencode(var.site.name_prefix)}."
  }
}

variable "nodes" {
  description = "GPU nodes by name: flavor or instance type, GPU count, disk sizes (GB), image; on_demand = true: a node Slurm's power saving makes when jobs wait and removes when idle (see on_demand), which then needs its cpus and memory_mb (Slurm's node line: it does not exist when Ansible runs)."
  type = map(object({
    flavor          = string
    gpu_count       = number
    root_disk_gb    = optional(number, 100)
    scratch_disk_gb = optional(number, 0)
    image           = string
    on_demand       = optional(bool, false)
    cpus            = optional(number)
    memory_mb       = optional(number)
  }))

  validation {
    condition     = length(var.nodes) > 0
    error_message = "nodes: at least one GPU node is required; got none."
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
    error_message = "nodes: root_disk_gb must be at least 30 (the notebook image alone needs several GB) and scratch_disk_gb 0 or more; got ${jsonencode({ for k, n in var.nodes : k => { root_disk_gb = n.root_disk_gb, scratch_disk_gb = n.scratch_disk_gb } })}."
  }
  validation {
    condition     = alltrue([for n in var.nodes : trimspace(n.flavor) != "" && trimspace(n.image) != ""])
    error_message = "nodes: flavor and image must not be empty; got ${jsonencode({ for k, n in var.nodes : k => { flavor = n.flavor, image = n.image } })}."
  }
  validation {
    condition     = alltrue([for n in var.nodes : !n.on_demand || (try(n.cpus >= 1 && floor(n.cpus) == n.cpus, false) && try(n.memory_mb >= 1024 && floor(n.memory_mb) == n.memory_mb, false))])
    error_message = "nodes: a node made on demand needs cpus (a whole number, at least 1) and memory_mb (a whole number, at least 1024) for Slurm's node line, as it does not exist when Ansible runs; got ${jsonencode({ for k, n in var.nodes : k => { cpus = n.cpus, memory_mb = n.memory_mb } if n.on_demand })}."
  }
}

variable "on_demand" {
  description = "How the nodes with on_demand = true are made (set by the cloud module): gxnb-nodes' driver (aws, openstack), its settings (never credentials), and network, the CIDR the nodes come up in (Galaxy's folder is exported to it: their addresses are not known beforehand). null: every node is made by terraform apply."
  type = object({
    driver   = string
    settings = map(string)
    network  = string
  })
  default = null

  validation {
    condition     = var.on_demand == null || contains(["aws", "openstack"], try(var.on_demand.driver, ""))
    error_message = "on_demand.driver: must be aws or openstack; got ${jsonencode(try(var.on_demand.driver, null))}."
  }
  validation {
    condition     = var.on_demand == null || can(cidrnetmask(try(var.on_demand.network, "")))
    error_message = "on_demand.network: must be an IPv4 network in CIDR form (the nodes' subnet); got ${jsonencode(try(var.on_demand.network, null))}."
  }
  validation {
    condition     = var.on_demand != null || alltrue([for n in values(var.nodes) : !n.on_demand])
    error_message = "on_demand: nodes ${join(", ", [for k, n in var.nodes : k if n.on_demand])} are made on demand, which needs the cloud module's on_demand settings; got none."
  }
}

variable "scratch_device" {
  description = "Block device of the scratch volume inside the instance (the cloud module's)."
  type        = string
  default     = "/dev/vdb"
}

variable "instances" {
  description = "The cloud's instance of each node, by node name: its id and private address (set by the cloud module). Ansible reaches the node there and it is the node's gxnb_internal_address (Slurm's NodeAddr)."
  type = map(object({
    id      = string
    address = string
  }))
  default = {}
}
