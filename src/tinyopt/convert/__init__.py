"""tinyopt.convert"""
