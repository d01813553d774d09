"""tinyopt.runtime"""
