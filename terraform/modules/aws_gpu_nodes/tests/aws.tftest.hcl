# Offline test with a mock AWS provider: the plan's security, encryption and
# metadata settings, the security-group rules (the core's firewall_rules), the
# inventory, and the AWS-specific validation. The shared settings' validation is
# the core module's (its tests, and tests/terraform/test_terraform.py through
# this module).

mock_provider "aws" {
  mock_data "aws_ami" {
    defaults = {
      id = "ami-0123456789abcdef0"
    }
  }
  mock_resource "aws_instance" {
    defaults = {
      private_ip = "10.20.0.15"
    }
  }
  mock_resource "aws_launch_template" {
    defaults = {
      id = "lt-0123456789abcdef0"
    }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = {
      arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gxnb-munge-key-AbCdEf"
    }
  }
  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/gxnb-node-1"
    }
  }
  mock_resource "aws_iam_instance_profile" {
    defaults = {
      arn = "arn:aws:iam::123456789012:instance-profile/gxnb-node-1"
    }
  }
  mock_resource "aws_iam_policy" {
    defaults = {
      arn = "arn:aws:iam::123456789012:policy/gxnb-controller-1"
    }
  }
  mock_data "aws_region" {
    defaults = {
      name = "eu-west-1"
    }
  }
  mock_data "aws_subnet" {
    defaults = {
      cidr_block = "10.20.0.0/24"
    }
  }
  # A g5.12xlarge: 48 vCPUs, 192 GiB.
  mock_data "aws_ec2_instance_type" {
    defaults = {
      default_vcpus = 48
      memory_size   = 196608
    }
  }
}

variables {
  vpc_id    = "vpc-0abc"
  subnet_id = "subnet-0abc"
  site = {
    ssh_public_key      = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKqv2G3dVw0Jmx8rj6RRX3zOP4HVo3Ea2t6mT5j4a7nZ ansible@controller"
    ssh_allowed_cidrs   = ["203.0.113.10/32"]
    galaxy_server       = { name = "galaxy", address = "10.20.0.2" }
    galaxy_server_cidrs = ["10.20.0.0/24"]
  }
  nodes = {
    gpu-a = { instance_type = "g5.2xlarge", gpu_count = 1 }
    gpu-b = { instance_type = "p4d.24xlarge", gpu_count = 8, scratch_disk_gb = 0 }
  }
}

run "nodes_are_locked_down" {
  command = apply

  assert {
    condition     = alltrue([for i in aws_instance.node : i.metadata_options[0].http_tokens == "required"])
    error_message = "IMDSv2 must be required on every node"
  }
  assert {
    condition     = alltrue([for i in aws_instance.node : i.root_block_device[0].encrypted])
    error_message = "root volumes must be encrypted"
  }
  assert {
    condition     = alltrue([for v in aws_instance.node["gpu-a"].ebs_block_device : v.encrypted]) && length(aws_instance.node["gpu-a"].ebs_block_device) == 1
    error_message = "the scratch volume must exist and be encrypted"
  }
  assert {
    condition     = length(aws_instance.node["gpu-b"].ebs_block_device) == 0
    error_message = "scratch_disk_gb = 0 means no scratch volume"
  }
  assert {
    condition     = aws_instance.node["gpu-a"].instance_type == "g5.2xlarge" && aws_instance.node["gpu-a"].ami == "ami-0123456789abcdef0"
    error_message = "instance type and image"
  }
  assert {
    condition     = aws_instance.node["gpu-a"].tags["gxnb:gpu-count"] == "1" && aws_instance.node["gpu-a"].tags["Name"] == "gxnb-gpu-a"
    error_message = "nodes are tagged"
  }
  assert {
    condition     = yamldecode(output.core.inventory_yaml).all.children.gpu_nodes.hosts["gpu-b"].gxnb_gpu_count == 8
    error_message = "inventory carries GPU counts"
  }
  assert {
    condition     = yamldecode(output.core.inventory_yaml).all.children.gpu_nodes.hosts["gpu-a"].ansible_host == "10.20.0.15"
    error_message = "inventory uses the instances' addresses"
  }
  assert {
    condition     = yamldecode(output.core.inventory_yaml).all.children.job_nodes.hosts["gpu-a"].gxnb_internal_address == "10.20.0.15"
    error_message = "a job node's gxnb_internal_address is its private address"
  }
  assert {
    condition     = output.core.instances["gpu-b"].id == aws_instance.node["gpu-b"].id
    error_message = "the core lists the instances"
  }
  assert {
    condition     = !strcontains(aws_instance.node["gpu-a"].user_data, "PRIVATE KEY")
    error_message = "no key material in user data"
  }
}

run "security_group_rules_are_the_cores_firewall_rules" {
  command = plan

  assert {
    condition     = keys(aws_vpc_security_group_ingress_rule.node) == keys(module.core.firewall_rules)
    error_message = "one ingress rule per firewall rule of the core, none else"
  }
  assert {
    condition = alltrue([for k, r in module.core.firewall_rules : (
      aws_vpc_security_group_ingress_rule.node[k].cidr_ipv4 == r.cidr &&
      aws_vpc_security_group_ingress_rule.node[k].ip_protocol == r.protocol &&
      aws_vpc_security_group_ingress_rule.node[k].from_port == r.from_port &&
      aws_vpc_security_group_ingress_rule.node[k].to_port == r.to_port &&
      aws_vpc_security_group_ingress_rule.node[k].description == r.description
    )])
    error_message = "each ingress rule must be its firewall rule"
  }
  assert {
    condition     = aws_vpc_security_group_ingress_rule.node["slurmd 10.20.0.0/24"].from_port == 6818 && aws_vpc_security_group_ingress_rule.node["slurmd 10.20.0.0/24"].to_port == 6818
    error_message = "slurmd (tcp 6818) from the Galaxy server's network"
  }
  assert {
    condition     = [for r in aws_vpc_security_group_ingress_rule.node : r.cidr_ipv4 if r.from_port == 22] == ["203.0.113.10/32"]
    error_message = "SSH only from the controller"
  }
  assert {
    condition     = toset([for r in aws_vpc_security_group_ingress_rule.node : r.cidr_ipv4 if r.from_port != 22]) == toset(["10.20.0.0/24"])
    error_message = "everything else only from the Galaxy server's network"
  }
  assert {
    condition     = !anytrue([for r in aws_vpc_security_group_ingress_rule.node : endswith(r.cidr_ipv4, "/0")])
    error_message = "no ingress open to the world"
  }
}

run "interactive_tool_ports_are_configurable" {
  command = plan
  variables {
    site = merge(var.site, { interactive_tool_ports = { from = 40000, to = 40999 } })
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.node["interactive-tools 10.20.0.0/24"].from_port == 40000 && aws_vpc_security_group_ingress_rule.node["interactive-tools 10.20.0.0/24"].to_port == 40999
    error_message = "the interactive-tool rule must open interactive_tool_ports"
  }
}

run "non_gpu_instance_type_is_refused" {
  command = plan
  variables {
    nodes = { web = { instance_type = "m5.large", gpu_count = 1 } }
  }
  expect_failures = [var.nodes]
}

run "nodes_made_on_demand_get_a_launch_template_and_no_instance" {
  command = apply
  variables {
    nodes = {
      gpu-a = { instance_type = "g5.2xlarge", gpu_count = 1 }
      gpu-b = { instance_type = "g5.12xlarge", gpu_count = 4, on_demand = true, root_disk_gb = 150 }
    }
    node_image_id = "ami-0fedcba9876543210"
  }

  assert {
    condition     = keys(aws_instance.node) == ["gpu-a"]
    error_message = "terraform makes the static node only; Slurm makes gpu-b when a job needs it"
  }
  assert {
    condition     = aws_launch_template.on_demand[0].image_id == "ami-0fedcba9876543210" && output.launch_template_id == aws_launch_template.on_demand[0].id
    error_message = "the launch template starts the job-node image"
  }
  assert {
    condition     = aws_launch_template.on_demand[0].metadata_options[0].http_tokens == "required" && aws_launch_template.on_demand[0].vpc_security_group_ids == toset([aws_security_group.node.id])
    error_message = "a node made on demand is locked down as the others: IMDSv2, the nodes' security group"
  }
  assert {
    condition     = alltrue([for d in aws_launch_template.on_demand[0].block_device_mappings : d.ebs[0].encrypted]) && [for d in aws_launch_template.on_demand[0].block_device_mappings : d.ebs[0].volume_size] == [150, 200]
    error_message = "encrypted root (the node's size) and scratch volumes"
  }
  assert {
    condition     = aws_launch_template.on_demand[0].user_data == null
    error_message = "the template has no user data: the driver passes the node's name, controller and cluster only"
  }
  assert {
    condition     = yamldecode(output.core.inventory_yaml).all.children.job_nodes.hosts["gpu-a"].gxnb_node_driver_settings == { region = "eu-west-1", launch_template = "lt-0123456789abcdef0", cluster_name = "gxnb", subnet_id = "subnet-0abc", munge_key_store = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gxnb-munge-key-AbCdEf" }
    error_message = "the inventory hands the driver its region, template, cluster, subnet and where the munge key goes (and no credential)"
  }
  assert {
    condition     = output.munge_key_secret_arn == aws_secretsmanager_secret.munge_key[0].arn && aws_launch_template.on_demand[0].iam_instance_profile[0].arn == aws_iam_instance_profile.on_demand_node[0].arn
    error_message = "the nodes made on demand boot with an instance profile and the key's secret is named"
  }
  assert {
    condition     = jsondecode(aws_iam_role_policy.on_demand_node_reads_munge_key[0].policy).Statement == [{ Effect = "Allow", Action = ["secretsmanager:GetSecretValue"], Resource = aws_secretsmanager_secret.munge_key[0].arn }]
    error_message = "a node made on demand may read the munge key's secret, and nothing else"
  }
  assert {
    condition     = [for st in jsondecode(aws_iam_policy.controller[0].policy).Statement : st.Sid] == ["Describe", "LaunchFromTheTemplate", "TerminateThisClustersNodes", "PassTheNodeRole", "StoreTheMungeKey"] && jsondecode(aws_iam_policy.controller[0].policy).Statement[2].Condition.StringEquals["ec2:ResourceTag/gxnb:cluster"] == "gxnb"
    error_message = "the controller may launch from the template, terminate this cluster's nodes only, and store the key"
  }
  assert {
    condition     = yamldecode(output.core.inventory_yaml).all.children.job_nodes.hosts["gpu-b"].gxnb_slurm_cpus == 48 && yamldecode(output.core.inventory_yaml).all.children.job_nodes.hosts["gpu-b"].gxnb_slurm_memory_mb == 176947
    error_message = "Slurm's node line from the instance type: its vCPUs and 90 % of its memory"
  }
  assert {
    condition     = keys(yamldecode(output.core.inventory_yaml).all.children.cloud_job_nodes.hosts) == ["gpu-b"]
    error_message = "gpu-b is a cloud node: listed for Slurm, not deployed to"
  }
}

run "a_node_made_on_demand_needs_the_node_image" {
  command = plan
  variables {
    nodes = { gpu-b = { instance_type = "g5.12xlarge", gpu_count = 4, on_demand = true } }
  }
  expect_failures = [aws_launch_template.on_demand]
}

run "a_bad_node_image_id_is_refused" {
  command = plan
  variables {
    node_image_id = "debian-12"
  }
  expect_failures = [var.node_image_id]
}
