# By the id of the layer's current AMI; its tags give the layer, commit, parent and
# fingerprint.
import {
  to = immutable_layered_ami.base
  id = "ami-0123456789abcdef0"
}
