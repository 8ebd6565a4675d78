# By the id of the layer's current AMI. Its tags give back the layer, commit,
# fingerprint, parent (of a child layer), display name and tags; what no tag holds
# must be written by hand: the build block, and a root layer's source block. The
# first plan after the import then shows only those blocks joining the state (an
# update that changes nothing in AWS), and the next one nothing.
import {
  to = immutable_layered_ami.base
  id = "ami-0123456789abcdef0"
}
