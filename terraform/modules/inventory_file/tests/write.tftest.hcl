# Runs the module for real (no provider): the file is written, re-written when
# the inventory changes, and bad inputs are refused. The file goes under
# .terraform/ (ignored by git).

variables {
  path           = ".terraform/tftest/generated/inventory.yml"
  inventory_yaml = "all:\n  children:\n    gpu_nodes:\n      hosts:\n        gpu-1:\n          gxnb_gpu_count: 1\n"
}

run "writes_the_inventory_file" {
  command = apply

  assert {
    condition     = fileexists(var.path)
    error_message = "the inventory file was not written"
  }
  assert {
    condition     = yamldecode(file(var.path)).all.children.gpu_nodes.hosts["gpu-1"].gxnb_gpu_count == 1
    error_message = "the file must hold the inventory given"
  }
  assert {
    condition     = output.path == var.path && output.inventory_yaml == var.inventory_yaml
    error_message = "outputs must name the file and its content"
  }
}

run "rewrites_the_file_when_the_inventory_changes" {
  command = apply

  variables {
    inventory_yaml = "all:\n  children:\n    gpu_nodes:\n      hosts:\n        gpu-2:\n          gxnb_gpu_count: 4\n"
  }

  assert {
    condition     = keys(yamldecode(file(var.path)).all.children.gpu_nodes.hosts) == ["gpu-2"]
    error_message = "the file must be re-written with the new inventory"
  }
}

run "shell_characters_are_written_verbatim" {
  command = apply

  variables {
    inventory_yaml = "all:\n  vars:\n    note: \"$HOME `id` $(id) ' \\\" ; && %s\"\n"
  }

  assert {
    condition     = yamldecode(file(var.path)).all.vars.note == "$HOME `id` $(id) ' \" ; && %s"
    error_message = "content must reach the file untouched (environment, not command line)"
  }
}

run "empty_inventory_is_refused" {
  command = plan
  variables {
    inventory_yaml = "  "
  }
  expect_failures = [var.inventory_yaml]
}

run "non_mapping_inventory_is_refused" {
  command = plan
  variables {
    inventory_yaml = "- just\n- a list\n"
  }
  expect_failures = [var.inventory_yaml]
}

run "folder_as_path_is_refused" {
  command = plan
  variables {
    path = "inventory/generated/"
  }
  expect_failures = [var.path]
}
