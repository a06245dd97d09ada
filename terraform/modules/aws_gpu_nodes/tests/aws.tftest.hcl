# Offline test with a mock AWS provider: the plan's security, encryption and
# metadata settings, the inventory, and the validation failures.

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
}

variables {
  vpc_id              = "vpc-0abc"
  subnet_id           = "subnet-0abc"
  ssh_public_key      = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKqv2G3dVw0Jmx8rj6RRX3zOP4HVo3Ea2t6mT5j4a7nZ ansible@controller"
  ssh_allowed_cidrs   = ["203.0.113.10/32"]
  galaxy_server_cidrs = ["10.20.0.0/24"]
  nodes = {
    gpu-a = { instance_type = "g5.2xlarge", gpu_count = 1 }
    gpu-b = { instance_type = "p4d.24xlarge", gpu_count = 8, scratch_disk_gb = 0 }
  }
  galaxy_server = { name = "galaxy", address = "10.20.0.2" }
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
    condition     = [for r in aws_vpc_security_group_ingress_rule.ssh : r.cidr_ipv4] == ["203.0.113.10/32"]
    error_message = "SSH only from the controller"
  }
  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.interactive_tools) == 1 && aws_vpc_security_group_ingress_rule.interactive_tools["10.20.0.0/24"].from_port == 32768
    error_message = "interactive-tool ports only from Galaxy's network"
  }
  assert {
    condition     = aws_instance.node["gpu-a"].tags["gxnb:gpu-count"] == "1" && aws_instance.node["gpu-a"].tags["Name"] == "gxnb-gpu-a"
    error_message = "nodes are tagged"
  }
  assert {
    condition     = yamldecode(output.inventory_yaml).all.children.gpu_nodes.hosts["gpu-b"].gxnb_gpu_count == 8
    error_message = "inventory carries GPU counts"
  }
  assert {
    condition     = yamldecode(output.inventory_yaml).all.children.gpu_nodes.hosts["gpu-a"].ansible_host == "10.20.0.15"
    error_message = "inventory uses the instances' addresses"
  }
  assert {
    condition     = !strcontains(aws_instance.node["gpu-a"].user_data, "PRIVATE KEY")
    error_message = "no key material in user data"
  }
}

run "non_gpu_instance_type_is_refused" {
  command = plan
  variables {
    nodes = { web = { instance_type = "m5.large", gpu_count = 1 } }
  }
  expect_failures = [var.nodes]
}

run "ssh_open_to_the_world_is_refused" {
  command = plan
  variables {
    ssh_allowed_cidrs = ["0.0.0.0/0"]
  }
  expect_failures = [var.ssh_allowed_cidrs]
}

run "zero_gpus_is_refused" {
  command = plan
  variables {
    nodes = { gpu-a = { instance_type = "g5.xlarge", gpu_count = 0 } }
  }
  expect_failures = [var.nodes]
}

run "interactive_tool_ports_are_configurable" {
  command = plan
  variables {
    interactive_tool_ports = { from = 40000, to = 40999 }
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.interactive_tools["10.20.0.0/24"].from_port == 40000 && aws_vpc_security_group_ingress_rule.interactive_tools["10.20.0.0/24"].to_port == 40999
    error_message = "the interactive-tool rule must open interactive_tool_ports"
  }
}

run "reversed_interactive_tool_ports_are_refused" {
  command = plan
  variables {
    interactive_tool_ports = { from = 60999, to = 32768 }
  }
  expect_failures = [var.interactive_tool_ports]
}

run "privileged_interactive_tool_ports_are_refused" {
  command = plan
  variables {
    interactive_tool_ports = { from = 22, to = 60999 }
  }
  expect_failures = [var.interactive_tool_ports]
}

run "interactive_tool_ports_beyond_65535_are_refused" {
  command = plan
  variables {
    interactive_tool_ports = { from = 32768, to = 70000 }
  }
  expect_failures = [var.interactive_tool_ports]
}
