# GPU nodes on OpenStack (as Galaxy Europe's), built on the core module:
# flavor, image, network, a scratch volume, a security group.

module "core" {
  source = "../gpu_nodes"

  nodes                 = var.nodes
  ssh_public_key        = var.ssh_public_key
  ssh_allowed_cidrs     = var.ssh_allowed_cidrs
  scratch_device        = "/dev/vdb"
  extra_ca_certificates = var.extra_ca_certificates
  galaxy_server         = var.galaxy_server
  addresses             = { for name, i in openstack_compute_instance_v2.node : name => i.access_ip_v4 }
}

resource "openstack_compute_keypair_v2" "ansible" {
  name       = "${var.name_prefix}-ansible"
  public_key = var.ssh_public_key
}

resource "openstack_networking_secgroup_v2" "node" {
  name        = "${var.name_prefix}-gpu-nodes"
  description = "GPU nodes: SSH from the controller, interactive-tool ports from Galaxy only"
}

resource "openstack_networking_secgroup_rule_v2" "ssh" {
  for_each          = toset(var.ssh_allowed_cidrs)
  security_group_id = openstack_networking_secgroup_v2.node.id
  direction         = "ingress"
  ethertype         = "IPv4"
  protocol          = "tcp"
  port_range_min    = 22
  port_range_max    = 22
  remote_ip_prefix  = each.value
}

resource "openstack_networking_secgroup_rule_v2" "interactive_tools" {
  for_each          = toset(var.galaxy_server_cidrs)
  security_group_id = openstack_networking_secgroup_v2.node.id
  direction         = "ingress"
  ethertype         = "IPv4"
  protocol          = "tcp"
  port_range_min    = var.interactive_tool_ports.from
  port_range_max    = var.interactive_tool_ports.to
  remote_ip_prefix  = each.value
}

resource "openstack_blockstorage_volume_v3" "scratch" {
  for_each          = { for name, n in var.nodes : name => n if n.scratch_disk_gb > 0 }
  name              = "${var.name_prefix}-${each.key}-scratch"
  size              = each.value.scratch_disk_gb
  volume_type       = var.volume_type
  availability_zone = var.availability_zone
}

resource "openstack_compute_instance_v2" "node" {
  for_each = var.nodes

  name              = "${var.name_prefix}-${each.key}"
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
  for_each    = var.nodes
  name        = each.value.image
  most_recent = true
}

resource "openstack_compute_volume_attach_v2" "scratch" {
  for_each    = openstack_blockstorage_volume_v3.scratch
  instance_id = openstack_compute_instance_v2.node[each.key].id
  volume_id   = each.value.id
}
