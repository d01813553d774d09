"""tinyopt.search"""
