# Provider-agnostic core: the shared settings and node specs, validated once;
# cloud-init user data from a template; the firewall rules every cloud opens;
# the Ansible inventory the playbooks consume, written to a file on apply when
# site.inventory_path is set.

locals {
  # The Galaxy server's networks: as given, or else the server's own address
  # (the validation of var.site makes sure there is one or the other).
  galaxy_server_cidrs = length(var.site.galaxy_server_cidrs) > 0 ? var.site.galaxy_server_cidrs : ["${var.site.galaxy_server.address}/32"]

  site = merge(var.site, { galaxy_server_cidrs = local.galaxy_server_cidrs })

  # What the nodes' security group opens, each service to its sources only. slurmd
  # is reached by slurmctld and srun on the Galaxy server (its NFS server and
  # srun's own ports are reached from the nodes: egress). Never the world: the
  # validation of var.site refuses any /0.
  services = [
    {
      name        = "ssh"
      description = "SSH from the Ansible controller"
      protocol    = "tcp"
      from_port   = 22
      to_port     = 22
      cidrs       = var.site.ssh_allowed_cidrs
    },
    {
      name        = "slurmd"
      description = "slurmd, from slurmctld and srun on the Galaxy server"
      protocol    = "tcp"
      from_port   = var.site.slurmd_port
      to_port     = var.site.slurmd_port
      cidrs       = local.galaxy_server_cidrs
    },
    {
      name        = "metrics-node"
      description = "The node exporter, scraped by Prometheus on the Galaxy server"
      protocol    = "tcp"
      from_port   = var.site.metrics_ports.node
      to_port     = var.site.metrics_ports.node
      cidrs       = local.galaxy_server_cidrs
    },
    {
      name        = "metrics-gpu"
      description = "The GPU exporter, scraped by Prometheus on the Galaxy server"
      protocol    = "tcp"
      from_port   = var.site.metrics_ports.gpu
      to_port     = var.site.metrics_ports.gpu
      cidrs       = local.galaxy_server_cidrs
    },
    {
      name        = "interactive-tools"
      description = "Interactive-tool containers, reached by gx-it-proxy on the Galaxy server"
      protocol    = "tcp"
      from_port   = var.site.interactive_tool_ports.from
      to_port     = var.site.interactive_tool_ports.to
      cidrs       = local.galaxy_server_cidrs
    },
  ]
  firewall_rules = merge([for s in local.services : {
    for c in s.cidrs : "${s.name} ${c}" => {
      name        = s.name
      description = s.description
      protocol    = s.protocol
      from_port   = s.from_port
      to_port     = s.to_port
      cidr        = c
    }
  }]...)

  user_data = {
    for name, node in var.nodes : name => templatefile("${path.module}/templates/cloud-init.yaml.tftpl", {
      hostname              = name
      admin_user            = var.site.admin_user
      ssh_public_key        = trimspace(var.site.ssh_public_key)
      scratch_device        = var.scratch_device
      scratch_mount_point   = var.site.scratch_mount_point
      scratch_enabled       = node.scratch_disk_gb > 0
      extra_ca_certificates = var.site.extra_ca_certificates
    })
  }

  # Nodes made on demand (Slurm's power saving) have no instance until a job needs them: Ansible
  # does not deploy them (cloud_job_nodes), Slurm learns their address when they register, and
  # their cores, memory and GPUs come from here.
  on_demand_nodes = { for name, node in var.nodes : name => node if node.on_demand }
  # A node without an instance (yet) is reached by its name.
  addresses = { for name, node in var.nodes : name => try(var.instances[name].address, name) if !node.on_demand }

  # The ports the firewall opens: slurm.conf's SlurmdPort, and the range Docker publishes the
  # sessions' ports from (the job nodes' net.ipv4.ip_local_port_range). Host variables: an
  # inventory's group variables lose to the playbooks' shared defaults (group_vars/all).
  # With nodes made on demand, the driver that makes them too (gxnb_node_driver).
  port_vars = merge({
    gxnb_slurmd_port       = var.site.slurmd_port
    gxnb_session_ports     = var.site.interactive_tool_ports
    gxnb_metrics_node_port = var.site.metrics_ports.node
    gxnb_metrics_gpu_port  = var.site.metrics_ports.gpu
    }, try({
      gxnb_node_driver          = var.on_demand.driver
      gxnb_node_driver_settings = var.on_demand.settings
  }, {}))

  inventory = {
    all = {
      vars = {
        ansible_user   = var.site.admin_user
        ansible_become = true
      }
      children = {
        gpu_nodes = {
          hosts = { for name, node in var.nodes : name => merge({ gxnb_gpu_count = node.gpu_count }, try({ ansible_host = local.addresses[name] }, {})) }
        }
        job_nodes = {
          hosts = merge(
            { for name, address in local.addresses : name => merge({ gxnb_internal_address = address }, local.port_vars) },
            { for name, node in local.on_demand_nodes : name => merge({
              gxnb_internal_network = var.on_demand.network
              gxnb_slurm_cpus       = node.cpus
              gxnb_slurm_memory_mb  = node.memory_mb
              # The node's own driver settings: its instance type (aws) or flavor (openstack).
              gxnb_node_driver_node_settings = { (var.on_demand.driver == "aws" ? "instance_type" : "flavor") = node.flavor }
            }, local.port_vars) },
          )
        }
        # Listed for Slurm (State=CLOUD), never deployed to: the node image carries the service.
        cloud_job_nodes = {
          hosts = { for name in keys(local.on_demand_nodes) : name => {} }
        }
        galaxy_servers = {
          hosts = var.site.galaxy_server == null ? {} : {
            (var.site.galaxy_server.name) = merge({ ansible_host = var.site.galaxy_server.address, gxnb_internal_address = var.site.galaxy_server.address }, local.port_vars)
          }
        }
      }
    }
  }
}

# Written on apply, re-written when the inventory changes (no provider needed).
module "inventory_file" {
  source = "../inventory_file"
  count  = var.site.inventory_path == null ? 0 : 1

  inventory_yaml = yamlencode(local.inventory)
  path           = var.site.inventory_path
}
