from ._disks import make_disks
