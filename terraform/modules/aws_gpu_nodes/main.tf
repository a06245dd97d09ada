# GPU nodes on AWS, built on the provider-agnostic core module, which checks the
# shared settings, renders the user data, lists the firewall rules and writes the
# inventory.

module "core" {
  source = "../gpu_nodes"

  site           = var.site
  nodes          = { for name, n in var.nodes : name => merge({ scratch_disk_gb = 200 }, n, { flavor = n.instance_type, image = data.aws_ami.node.id }) }
  scratch_device = "/dev/nvme1n1" # EBS volumes show up as NVMe devices on Nitro instances
  instances      = { for name, i in aws_instance.node : name => { id = i.id, address = i.private_ip } }
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
  name_prefix = module.core.site.name_prefix
  tags        = merge({ "gxnb:service" = "galaxy-gpu-notebook", "gxnb:managed-by" = "terraform" }, var.tags)
}

resource "aws_key_pair" "ansible" {
  key_name   = "${local.name_prefix}-ansible"
  public_key = module.core.site.ssh_public_key
  tags       = local.tags
}

resource "aws_security_group" "node" {
  name        = "${local.name_prefix}-gpu-nodes"
  description = "GPU nodes: SSH from the controller, slurmd and interactive-tool ports from Galaxy only"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

# One rule per entry of the core's firewall_rules (SSH, slurmd, interactive tools).
resource "aws_vpc_security_group_ingress_rule" "node" {
  for_each          = module.core.firewall_rules
  security_group_id = aws_security_group.node.id
  description       = each.value.description
  cidr_ipv4         = each.value.cidr
  ip_protocol       = each.value.protocol
  from_port         = each.value.from_port
  to_port           = each.value.to_port
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.node.id
  description       = "Package registries, image registry, Galaxy (Slurm controller, NFS)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

resource "aws_instance" "node" {
  #checkov:skip=CKV2_AWS_41:The nodes call no AWS API; least privilege is no instance role.
  for_each = module.core.nodes

  ami                    = each.value.image
  instance_type          = each.value.flavor
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

  tags = merge(local.tags, { Name = "${local.name_prefix}-${each.key}", "gxnb:gpu-count" = tostring(each.value.gpu_count) })
}
