# GPU nodes on AWS, built on the provider-agnostic core module, which checks the
# shared settings, renders the user data, lists the firewall rules and writes the
# inventory.

module "core" {
  source = "../gpu_nodes"

  site = var.site
  nodes = { for name, n in var.nodes : name => merge({ scratch_disk_gb = 200 }, n, {
    flavor = n.instance_type
    image  = try(n.on_demand, false) ? coalesce(var.node_image_id, data.aws_ami.node.id) : data.aws_ami.node.id
    # Slurm's node line for a node made on demand: the type's cores, and 90 % of its memory
    # (as for the nodes Ansible deploys: the rest is the system's and Docker's).
    cpus      = try(n.on_demand, false) ? data.aws_ec2_instance_type.on_demand[n.instance_type].default_vcpus : null
    memory_mb = try(n.on_demand, false) ? floor(data.aws_ec2_instance_type.on_demand[n.instance_type].memory_size * 0.9) : null
  }) }
  scratch_device = "/dev/nvme1n1" # EBS volumes show up as NVMe devices on Nitro instances
  instances      = { for name, i in aws_instance.node : name => { id = i.id, address = i.private_ip } }
  # Slurm's power saving makes these nodes from the launch template (gxnb-nodes' aws driver).
  on_demand = length(local.on_demand_nodes) == 0 ? null : {
    driver = "aws"
    settings = {
      region          = data.aws_region.current.name
      launch_template = aws_launch_template.on_demand[0].id
      cluster_name    = local.name_prefix
      subnet_id       = var.subnet_id
      munge_key_store = aws_secretsmanager_secret.munge_key[0].arn
    }
    network = data.aws_subnet.nodes.cidr_block
  }
}

data "aws_region" "current" {}

data "aws_subnet" "nodes" {
  id = var.subnet_id
}

data "aws_ec2_instance_type" "on_demand" {
  for_each      = toset([for n in values(local.on_demand_nodes) : n.instance_type])
  instance_type = each.key
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
  name_prefix     = module.core.site.name_prefix
  on_demand_nodes = { for name, n in var.nodes : name => n if try(n.on_demand, false) }
  tags            = merge({ "gxnb:service" = "galaxy-gpu-notebook", "gxnb:managed-by" = "terraform" }, var.tags)
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
  for_each = { for name, n in module.core.nodes : name => n if !n.on_demand }

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

# The nodes made on demand: gxnb-nodes' aws driver launches each from this template with the
# node's instance type, its name and cluster as tags, and user data naming the node, the
# controller and the cluster (no secret). The image is a job node's, made beforehand.
data "aws_ami" "on_demand" {
  count  = length(local.on_demand_nodes) > 0 ? 1 : 0
  owners = ["self"]

  filter {
    name   = "image-id"
    values = [coalesce(var.node_image_id, data.aws_ami.node.id)]
  }
}

resource "aws_launch_template" "on_demand" {
  count                  = length(local.on_demand_nodes) > 0 ? 1 : 0
  name                   = "${local.name_prefix}-job-node"
  description            = "Job nodes Slurm makes on demand (gxnb-nodes aws driver)"
  image_id               = var.node_image_id
  key_name               = aws_key_pair.ansible.key_name
  vpc_security_group_ids = [aws_security_group.node.id]
  ebs_optimized          = true
  update_default_version = true # the driver launches $Latest

  monitoring {
    enabled = true
  }

  metadata_options {
    http_tokens                 = "required" # IMDSv2 only
    http_endpoint               = "enabled"
    http_put_response_hop_limit = 1
  }

  # One template for every node made on demand: the largest of their disks.
  block_device_mappings {
    device_name = data.aws_ami.on_demand[0].root_device_name
    ebs {
      volume_size           = max([for n in values(module.core.nodes) : n.root_disk_gb if n.on_demand]...)
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  dynamic "block_device_mappings" {
    for_each = max([for n in values(module.core.nodes) : n.scratch_disk_gb if n.on_demand]...) > 0 ? [max([for n in values(module.core.nodes) : n.scratch_disk_gb if n.on_demand]...)] : []
    content {
      device_name = "/dev/sdb"
      ebs {
        volume_size           = block_device_mappings.value
        volume_type           = "gp3"
        encrypted             = true
        delete_on_termination = true
      }
    }
  }

  # Reads the munge key at boot (gxnb-node-join) and nothing else.
  iam_instance_profile {
    arn = aws_iam_instance_profile.on_demand_node[0].arn
  }

  tag_specifications {
    resource_type = "volume"
    tags          = local.tags
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = var.node_image_id != null
      error_message = "nodes ${join(", ", keys(local.on_demand_nodes))} are made on demand, which needs node_image_id: the image of a job node with the service installed that joins Slurm when it boots (docs/cluster.md, \"Nodes on demand in a cloud\"); got none."
    }
  }
}

# Where the nodes made on demand fetch Slurm's munge key at boot. Terraform makes the secret
# without a value, so the key is never in its state: the slurm role puts it from the controller
# (gxnb-nodes share-munge-key, with the controller's instance profile).
resource "aws_secretsmanager_secret" "munge_key" {
  #checkov:skip=CKV2_AWS_57:The munge key is rotated by changing it in the vault and rerunning site.yml, not by a Lambda.
  #checkov:skip=CKV_AWS_149:The account's default key for Secrets Manager encrypts it; kms_key_id sets another.
  count                   = length(local.on_demand_nodes) > 0 ? 1 : 0
  name_prefix             = "${local.name_prefix}-munge-key-"
  description             = "Slurm's munge key for the job nodes made on demand (gxnb-node-join reads it at boot)"
  kms_key_id              = var.secrets_kms_key_id
  recovery_window_in_days = 7
  tags                    = local.tags
}

resource "aws_iam_role" "on_demand_node" {
  count       = length(local.on_demand_nodes) > 0 ? 1 : 0
  name_prefix = "${local.name_prefix}-node-"
  description = "Job nodes made on demand: read the munge key at boot, nothing else"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { Service = "ec2.amazonaws.com" } }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy" "on_demand_node_reads_munge_key" {
  count = length(local.on_demand_nodes) > 0 ? 1 : 0
  name  = "read-munge-key"
  role  = aws_iam_role.on_demand_node[0].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["secretsmanager:GetSecretValue"], Resource = aws_secretsmanager_secret.munge_key[0].arn }]
  })
}

resource "aws_iam_instance_profile" "on_demand_node" {
  count       = length(local.on_demand_nodes) > 0 ? 1 : 0
  name_prefix = "${local.name_prefix}-node-"
  role        = aws_iam_role.on_demand_node[0].name
  tags        = local.tags
}

# What the controller (the first Galaxy server, which this module does not make) may do for
# gxnb-nodes: attach this policy to its instance role. Launches from the template only, and
# terminates only this cluster's instances (by their tag).
resource "aws_iam_policy" "controller" {
  count       = length(local.on_demand_nodes) > 0 ? 1 : 0
  name_prefix = "${local.name_prefix}-controller-"
  description = "gxnb-nodes on the Slurm controller: make and remove this cluster's job nodes, store the munge key"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Sid = "Describe", Effect = "Allow", Resource = "*",
      Action = ["ec2:DescribeInstances", "ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions"] },
      { Sid = "LaunchFromTheTemplate", Effect = "Allow", Action = ["ec2:RunInstances", "ec2:CreateTags"], Resource = "*",
      Condition = { ArnLike = { "ec2:LaunchTemplate" = aws_launch_template.on_demand[0].arn } } },
      { Sid = "TerminateThisClustersNodes", Effect = "Allow", Action = ["ec2:TerminateInstances"], Resource = "*",
      Condition = { StringEquals = { "ec2:ResourceTag/gxnb:cluster" = local.name_prefix } } },
      { Sid = "PassTheNodeRole", Effect = "Allow", Action = "iam:PassRole", Resource = aws_iam_role.on_demand_node[0].arn },
      { Sid = "StoreTheMungeKey", Effect = "Allow", Action = ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"],
      Resource = aws_secretsmanager_secret.munge_key[0].arn },
    ]
  })
  tags = local.tags
}
