# Writes an Ansible inventory file with a local-exec provisioner (no provider
# needed). The content and the path reach the shell through the environment,
# never the command line, so they show up neither in the process list nor in
# Terraform's log of the command. A change of either replaces the resource, and
# so re-writes the file.

resource "terraform_data" "inventory" {
  input            = { content = var.inventory_yaml, path = var.path }
  triggers_replace = [var.inventory_yaml, var.path]

  provisioner "local-exec" {
    command     = "mkdir -p \"$(dirname \"$INVENTORY_PATH\")\" && printf '%s\\n' \"$INVENTORY\" > \"$INVENTORY_PATH\""
    environment = { INVENTORY = self.input.content, INVENTORY_PATH = self.input.path }
  }
}
