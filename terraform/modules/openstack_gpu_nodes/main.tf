# GPU nodes on OpenStack (as Galaxy Europe's), built on the core module, which
# checks the shared settings, renders the user data, lists the firewall rules and
# writes the inventory: flavor, image, network, a scratch volume, a security group.

module "core" {
  source = "../gpu_nodes"

  site      = var.site
  nodes     = { for name, n in var.nodes : name => merge({ scratch_disk_gb = 500 }, n) }
  instances = { for name, i in openstack_compute_instance_v2.node : name => { id = i.id, address = i.access_ip_v4 } }
  # scratch_device: the core's default, /dev/vdb (virtio)
}

locals {
  name_prefix = module.core.site.name_prefix
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
  for_each          = { for name, n in module.core.nodes : name => n if n.scratch_disk_gb > 0 }
  name              = "${local.name_prefix}-${each.key}-scratch"
  size              = each.value.scratch_disk_gb
  volume_type       = var.volume_type
  availability_zone = var.availability_zone
}

resource "openstack_compute_instance_v2" "node" {
  for_each = module.core.nodes

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
  for_each    = module.core.nodes
  name        = each.value.image
  most_recent = true
}

resource "openstack_compute_volume_attach_v2" "scratch" {
  for_each    = openstack_blockstorage_volume_v3.scratch
  instance_id = openstack_compute_instance_v2.node[each.key].id
  volume_id   = each.value.id
}
