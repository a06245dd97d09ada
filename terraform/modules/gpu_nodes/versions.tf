terraform {
  required_version = ">= 1.9" # validations that refer to other variables
}
