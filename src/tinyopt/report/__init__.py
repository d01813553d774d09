"""tinyopt.report"""
