"""racam.cam"""
