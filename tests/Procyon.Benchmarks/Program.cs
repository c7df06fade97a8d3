using Procyon.Benchmarks;

return args.FirstOrDefault() switch
{
    "sleepers" => await SleepersBenchmark.RunAsync(args.Skip(1).Select(int.Parse).DefaultIfEmpty(1000).ToArray()),
    "startup" => await StartupBenchmark.RunAsync(args.Length > 1 ? int.Parse(args[1]) : 50),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Procyon.Benchmarks sleepers [N ...] | startup [modules]");
    return 2;
}
