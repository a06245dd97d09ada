variable "inventory_yaml" {
  description = "Ansible inventory (YAML) to write, such as a GPU node module's inventory_yaml output. No secrets: it is stored in the state."
  type        = string

  validation {
    condition     = trimspace(var.inventory_yaml) != "" && can(keys(yamldecode(var.inventory_yaml)))
    error_message = "inventory_yaml: must be a YAML mapping of inventory groups (for example all: {children: ...}); got ${jsonencode(substr(var.inventory_yaml, 0, 80))}."
  }
}

variable "path" {
  description = "File the inventory is written to (parent folders are created). A relative path is taken from the folder terraform runs in."
  type        = string

  validation {
    condition     = trimspace(var.path) != "" && !endswith(var.path, "/") && !can(regex("[\\r\\n]", var.path))
    error_message = "path: must name a file (not empty, not ending in '/', no line breaks); got ${jsonencode(var.path)}."
  }
}
