"""tinyopt.zoo"""
