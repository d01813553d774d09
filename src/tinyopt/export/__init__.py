"""tinyopt.export"""
