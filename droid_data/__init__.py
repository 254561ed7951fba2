"""droid_data"""
