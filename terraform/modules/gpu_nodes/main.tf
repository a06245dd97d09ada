# Provider-agnostic core: validated node specs, cloud-init user data from a
# template, and the Ansible inventory the playbooks consume.

locals {
  user_data = {
    for name, node in var.nodes : name => templatefile("${path.module}/templates/cloud-init.yaml.tftpl", {
      hostname              = name
      admin_user            = var.admin_user
      ssh_public_key        = trimspace(var.ssh_public_key)
      scratch_device        = var.scratch_device
      scratch_mount_point   = var.scratch_mount_point
      scratch_enabled       = node.scratch_disk_gb > 0
      extra_ca_certificates = var.extra_ca_certificates
    })
  }

  gpu_hosts = {
    for name, node in var.nodes : name => {
      ansible_host   = lookup(var.addresses, name, name)
      gxnb_gpu_count = node.gpu_count
    }
  }

  inventory = {
    all = {
      vars = {
        ansible_user   = var.admin_user
        ansible_become = true
      }
      children = {
        gpu_nodes = { hosts = local.gpu_hosts }
        job_nodes = { hosts = { for name in keys(var.nodes) : name => {} } }
        galaxy_servers = {
          hosts = var.galaxy_server == null ? {} : {
            (var.galaxy_server.name) = { ansible_host = var.galaxy_server.address }
          }
        }
      }
    }
  }
}
