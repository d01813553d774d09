"""tinyopt.analysis"""
