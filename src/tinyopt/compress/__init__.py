"""tinyopt.compress"""
