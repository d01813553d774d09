"""tinyopt.devices"""
