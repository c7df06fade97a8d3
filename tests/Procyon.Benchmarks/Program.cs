using Procyon.Benchmarks;

// The benchmarks start Postgres databases, wasm-opt scripts and server processes as Linux runs them.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

return args.FirstOrDefault() switch
{
    "sleepers" => await SleepersBenchmark.RunAsync(args.Skip(1).Select(int.Parse).DefaultIfEmpty(1000).ToArray()),
    "startup" => await StartupBenchmark.RunAsync(args.Length > 1 ? int.Parse(args[1]) : 50),
    "inserts" => await ReducerInsertBenchmark.RunAsync(args.Length > 1 ? int.Parse(args[1]) : 5000, args.Length > 2 ? int.Parse(args[2]) : 16),
    "scheduler" => await SchedulerBenchmark.RunAsync(args.Length > 1 ? int.Parse(args[1]) : 10_000, args.Length > 2 ? int.Parse(args[2]) : 20_000, args.Length > 3 ? int.Parse(args[3]) : 0),
    "hub" => await HubFanOutBenchmark.RunAsync(args.Length > 1 ? int.Parse(args[1]) : 1000, args.Length > 2 ? int.Parse(args[2]) : 100),
    "codec" => await CodecBenchmark.RunAsync(args.Length > 1 ? int.Parse(args[1]) : 100_000),
    "abuse" => await AbuseBenchmark.RunAsync(args.Length > 1 ? int.Parse(args[1]) : 100),
    "bare-hub" => await HubFanOutBenchmark.ServeBareHubAsync(),
    "databases" => await DatabasesBenchmark.RunAsync(args.Length > 1 ? int.Parse(args[1]) : 1000, TimeSpan.FromSeconds(args.Length > 2 ? int.Parse(args[2]) : 10)),
    "durable" => await DurableBenchmark.RunAsync(args.Length > 1 ? int.Parse(args[1]) : 1000),
    "publish" => await PublishBenchmark.RunAsync(args.Length > 1 ? int.Parse(args[1]) : 10, args.Length > 2 ? int.Parse(args[2]) : 200),
    "summarize" => Summary.Tabulate(args.Skip(1)),
    "http-add" => await HttpAddBenchmark.RunAsync(args.Length > 1 ? int.Parse(args[1]) : 16, TimeSpan.FromSeconds(args.Length > 2 ? int.Parse(args[2]) : 10)),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Procyon.Benchmarks sleepers [N ...] | startup [modules] | codec [iterations] | http-add [concurrency] [seconds] | inserts [rows] [concurrency] | hub [connections] [calls] | scheduler [delayed] [due-now] [idle-databases] | abuse [attackers] | databases [count] [seconds of calls] | publish [publishes] [calls] | durable [sleepers] | summarize [saved outputs ...]");
    return 2;
}
