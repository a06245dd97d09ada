# GPU nodes on OpenStack (as Galaxy Europe's), built on the core module, which
# checks the shared settings, renders the user data, lists the firewall rules and
# writes the inventory: flavor, image, network, a scratch volume, a security group.

module "core" {
  source = "../gpu_nodes"

  site = var.site
  nodes = { for name, n in var.nodes : name => merge({ scratch_disk_gb = 500 }, n, {
    image = try(n.on_demand, false) ? try(coalesce(var.node_image, try(n.image, null)), "") : n.image
    # Slurm's node line for a node made on demand: the flavor's cores and 90 % of its memory.
    cpus      = try(n.on_demand, false) ? data.openstack_compute_flavor_v2.on_demand[n.flavor].vcpus : null
    memory_mb = try(n.on_demand, false) ? floor(data.openstack_compute_flavor_v2.on_demand[n.flavor].ram * 0.9) : null
  }) }
  instances = { for name, i in openstack_compute_instance_v2.node : name => { id = i.id, address = i.access_ip_v4 } }
  # scratch_device: the core's default, /dev/vdb (virtio)
  # Slurm's power saving makes these nodes through the cloud's API (gxnb-nodes' openstack driver,
  # with the controller's clouds.yaml entry cloud_name: an application credential).
  on_demand = length(local.on_demand_nodes) == 0 ? null : {
    driver = "openstack"
    settings = {
      cloud        = var.cloud_name
      image        = var.node_image
      flavor       = values(local.on_demand_nodes)[0].flavor
      network      = var.network_name
      cluster_name = local.name_prefix
      # The Barbican secret's name: site.yml stores the munge key there, a node reads it at boot.
      munge_key_store = "${local.name_prefix}-munge-key"
    }
    network = one(data.openstack_networking_subnet_v2.nodes[*].cidr)
  }
}

locals {
  name_prefix     = module.core.site.name_prefix
  on_demand_nodes = { for name, n in var.nodes : name => n if try(n.on_demand, false) }
}

data "openstack_compute_flavor_v2" "on_demand" {
  for_each = toset([for n in values(local.on_demand_nodes) : n.flavor])
  name     = each.key
}

data "openstack_networking_subnet_v2" "nodes" {
  count      = length(local.on_demand_nodes) > 0 ? 1 : 0
  network_id = data.openstack_networking_network_v2.nodes[0].id
  ip_version = 4
}

data "openstack_networking_network_v2" "nodes" {
  count = length(local.on_demand_nodes) > 0 ? 1 : 0
  name  = var.network_name

  # Nodes made on demand need the job-node image and the controller's clouds.yaml entry.
  lifecycle {
    precondition {
      condition     = var.node_image != null && var.cloud_name != null
      error_message = "nodes ${join(", ", keys(local.on_demand_nodes))} are made on demand, which needs node_image (a job node's image with the service installed) and cloud_name (the controller's clouds.yaml entry); got node_image = ${jsonencode(var.node_image)}, cloud_name = ${jsonencode(var.cloud_name)}."
    }
  }
}

resource "openstack_compute_keypair_v2" "ansible" {
  name       = "${local.name_prefix}-ansible"
  public_key = module.core.site.ssh_public_key
}

resource "openstack_networking_secgroup_v2" "node" {
  name        = "${local.name_prefix}-gpu-nodes"
  description = "GPU nodes: SSH from the controller, slurmd and interactive-tool ports from Galaxy only"
}

# One rule per entry of the core's firewall_rules (SSH, slurmd, interactive tools).
# Egress: the security group's default rules (all).
resource "openstack_networking_secgroup_rule_v2" "node" {
  for_each          = module.core.firewall_rules
  security_group_id = openstack_networking_secgroup_v2.node.id
  description       = each.value.description
  direction         = "ingress"
  ethertype         = "IPv4"
  protocol          = each.value.protocol
  port_range_min    = each.value.from_port
  port_range_max    = each.value.to_port
  remote_ip_prefix  = each.value.cidr
}

resource "openstack_blockstorage_volume_v3" "scratch" {
  for_each          = { for name, n in module.core.nodes : name => n if n.scratch_disk_gb > 0 && !n.on_demand }
  name              = "${local.name_prefix}-${each.key}-scratch"
  size              = each.value.scratch_disk_gb
  volume_type       = var.volume_type
  availability_zone = var.availability_zone
}

resource "openstack_compute_instance_v2" "node" {
  for_each = { for name, n in module.core.nodes : name => n if !n.on_demand }

  name              = "${local.name_prefix}-${each.key}"
  flavor_name       = each.value.flavor
  key_pair          = openstack_compute_keypair_v2.ansible.name
  security_groups   = [openstack_networking_secgroup_v2.node.name]
  availability_zone = var.availability_zone
  user_data         = module.core.user_data[each.key]
  metadata          = merge({ "gxnb-gpu-count" = tostring(each.value.gpu_count) }, var.metadata)

  block_device {
    uuid                  = data.openstack_images_image_v2.node[each.key].id
    source_type           = "image"
    destination_type      = "volume"
    volume_size           = each.value.root_disk_gb
    boot_index            = 0
    delete_on_termination = true
  }

  network {
    name = var.network_name
  }
}

data "openstack_images_image_v2" "node" {
  for_each    = { for name, n in module.core.nodes : name => n if !n.on_demand }
  name        = each.value.image
  most_recent = true
}

resource "openstack_compute_volume_attach_v2" "scratch" {
  for_each    = openstack_blockstorage_volume_v3.scratch
  instance_id = openstack_compute_instance_v2.node[each.key].id
  volume_id   = each.value.id
}
