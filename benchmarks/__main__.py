"""``make bench``: every benchmark, one after the other, numbers to stdout."""

from benchmarks import gossip, mesh

if __name__ == "__main__":
    gossip.main()
    print()
    mesh.main()
