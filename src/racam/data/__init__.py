"""racam.data"""
