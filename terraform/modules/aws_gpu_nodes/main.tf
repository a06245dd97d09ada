# GPU nodes on AWS, built on the provider-agnostic core module.

module "core" {
  source = "../gpu_nodes"

  nodes = {
    for name, n in var.nodes : name => {
      flavor          = n.instance_type
      gpu_count       = n.gpu_count
      root_disk_gb    = n.root_disk_gb
      scratch_disk_gb = n.scratch_disk_gb
      image           = data.aws_ami.node.id
    }
  }
  ssh_public_key        = var.ssh_public_key
  ssh_allowed_cidrs     = var.ssh_allowed_cidrs
  scratch_device        = "/dev/nvme1n1"
  extra_ca_certificates = var.extra_ca_certificates
  galaxy_server         = var.galaxy_server
  addresses             = { for name, instance in aws_instance.node : name => instance.private_ip }
}

data "aws_ami" "node" {
  most_recent = true
  owners      = var.ami_owners

  filter {
    name   = "name"
    values = [var.ami_name_filter]
  }
  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

locals {
  tags = merge({ "gxnb:service" = "galaxy-gpu-notebook", "gxnb:managed-by" = "terraform" }, var.tags)
}

resource "aws_key_pair" "ansible" {
  key_name   = "${var.name_prefix}-ansible"
  public_key = var.ssh_public_key
  tags       = local.tags
}

resource "aws_security_group" "node" {
  name        = "${var.name_prefix}-gpu-nodes"
  description = "GPU nodes: SSH from the controller, interactive-tool ports from Galaxy only"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each          = toset(var.ssh_allowed_cidrs)
  security_group_id = aws_security_group.node.id
  description       = "SSH from the Ansible controller"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
}

resource "aws_vpc_security_group_ingress_rule" "interactive_tools" {
  for_each          = toset(var.galaxy_server_cidrs)
  security_group_id = aws_security_group.node.id
  description       = "Interactive-tool containers, reached by gx-it-proxy"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.interactive_tool_ports.from
  to_port           = var.interactive_tool_ports.to
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.node.id
  description       = "Package registries, image registry, Galaxy"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

resource "aws_instance" "node" {
  #checkov:skip=CKV2_AWS_41:The nodes call no AWS API; least privilege is no instance role.
  for_each = var.nodes

  ami                    = data.aws_ami.node.id
  instance_type          = each.value.instance_type
  subnet_id              = var.subnet_id
  key_name               = aws_key_pair.ansible.key_name
  vpc_security_group_ids = [aws_security_group.node.id]
  user_data              = module.core.user_data[each.key]
  monitoring             = true
  ebs_optimized          = true

  metadata_options {
    http_tokens                 = "required" # IMDSv2 only
    http_endpoint               = "enabled"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_size           = each.value.root_disk_gb
    volume_type           = "gp3"
    encrypted             = true
    delete_on_termination = true
  }

  dynamic "ebs_block_device" {
    for_each = each.value.scratch_disk_gb > 0 ? [each.value.scratch_disk_gb] : []
    content {
      device_name           = "/dev/sdb"
      volume_size           = ebs_block_device.value
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tags = merge(local.tags, { Name = "${var.name_prefix}-${each.key}", "gxnb:gpu-count" = tostring(each.value.gpu_count) })
}
