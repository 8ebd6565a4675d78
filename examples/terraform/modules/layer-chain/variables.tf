variable "commit" {
  description = "Full git commit of the image sources; a layer's own `commit` overrides it."
  type        = string
}

variable "source_image" {
  description = "The base layer's upstream image: owners and a name pattern (newest wins)."
  type = object({
    owners = list(string)
    name   = string
  })
}

variable "base" {
  description = "The base (OS) layer."
  type = object({
    layer        = string
    display_name = optional(string)
    commit       = optional(string)
    user_data    = string
  })
}

variable "role" {
  description = "The role layer, built on the base layer."
  type = object({
    layer        = string
    display_name = optional(string)
    commit       = optional(string)
    user_data    = string
  })
}

variable "app" {
  description = "The app layer, built on the role layer."
  type = object({
    layer        = string
    display_name = optional(string)
    commit       = optional(string)
    user_data    = string
  })
}

variable "instance_type" {
  description = "Instance type of the builder instances."
  type        = string
  default     = "t3.small"
}

variable "keep" {
  description = "AMIs to keep per layer after a build (older ones not in use are deregistered)."
  type        = number
  default     = 3
}

variable "tags" {
  description = "Further tags on the app layer's AMIs."
  type        = map(string)
  default     = {}
}
