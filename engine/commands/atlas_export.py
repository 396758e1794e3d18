"""placeholder"""
def add_export_arguments(parser):
    pass
def run_export(args):
    return 0
