# A multiprocessing Manager (a server process listening in the program's own
# temporary directory) shared by three workers per round, eight rounds.
import multiprocessing as mp, time
def work(d, l, i):
    for j in range(10):
        d[(i,j)] = i*j
        l.append(i+j)
        time.sleep(0.02)
if __name__ == "__main__":
    with mp.Manager() as m:
        d = m.dict(); l = m.list()
        for r in range(8):
            ps = [mp.Process(target=work, args=(d,l,i+r*10)) for i in range(3)]
            for p in ps: p.start()
            for p in ps: p.join()
            print(r, len(d), sum(l), flush=True)
        print(sorted(d.items())[:5], sum(d.values()))
