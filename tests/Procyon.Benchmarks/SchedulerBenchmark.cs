using System.Diagnostics;
using Hangfire;
using Hangfire.PostgreSql;
using Hangfire.PostgreSql.Factories;
using Hangfire.States;
using Npgsql;
using Procyon.Testing;

namespace Procyon.Benchmarks;

/// <summary>
/// Scheduled tables against Hangfire on the same Postgres: (a) lateness of one-shot rows spread
/// over a window, (b) throughput of rows all due at once. Procyon's rows name the ledger module's
/// <c>on_hit</c> reducer, which inserts a row; Hangfire's jobs insert the same row with Npgsql.
/// With a number of idle databases, Procyon runs the same measurement twice instead: alone, and
/// beside that many other published databases whose scheduled tables hold rows due later, to
/// show that the scheduler's cost does not grow with the number of scheduled tables.
/// </summary>
internal static class SchedulerBenchmark
{
    /// <summary>Time for Procyon to write its delayed rows before the first is due.</summary>
    private static readonly TimeSpan Lead = TimeSpan.FromSeconds(20);

    /// <summary>Rows or jobs run first and not measured: JIT, connection pools, instances.</summary>
    private const int WarmUp = 500;

    private static readonly TimeSpan Spread = TimeSpan.FromSeconds(10);

    public static async Task<int> RunAsync(int delayed, int dueNow, int idleDatabases)
    {
        if (idleDatabases > 0)
        {
            return await ScaleAsync(delayed, dueNow, idleDatabases);
        }
        await using var database = await TestDatabase.CreateAsync();
        await using var dataSource = NpgsqlDataSource.Create(database.ConnectionString);
        Console.WriteLine($"(a) {delayed} one-shot rows/jobs spread over {Spread.TotalSeconds:0} s; (b) {dueNow} due at once. Times in ms.");
        Console.WriteLine($"{"scheduler",-26} | {"p50 late",8} | {"p99 late",8} | {"max late",8} | {"rows/s",8}");

        var procyon = await ProcyonAsync(database, dataSource, delayed, dueNow);
        Print("Procyon scheduled table", procyon);
        var hangfire = await HangfireAsync(database, dataSource, delayed, dueNow);
        Print("Hangfire.PostgreSql", hangfire);
        Console.WriteLine($"Procyon / Hangfire throughput: {procyon.RowsPerSecond / hangfire.RowsPerSecond:0.0}×; p99 lateness {procyon.Late[1]:0.0} ms vs {hangfire.Late[1]:0.0} ms");
        Summary.Write("scheduler", $"p99 ms late, {delayed:N0} rows over {Spread.TotalSeconds:0} s", procyon.Late[1], "Hangfire.PostgreSql", hangfire.Late[1]);
        Summary.Write("scheduler", $"rows/s, {dueNow:N0} due at once", procyon.RowsPerSecond, "Hangfire.PostgreSql", hangfire.RowsPerSecond);
        return 0;
    }

    /// <summary>Procyon alone, then beside <paramref name="idleDatabases"/> idle-scheduled databases, each on a Postgres database of its own.</summary>
    private static async Task<int> ScaleAsync(int delayed, int dueNow, int idleDatabases)
    {
        Console.WriteLine($"(a) {delayed} one-shot rows spread over {Spread.TotalSeconds:0} s; (b) {dueNow} due at once; alone and beside {idleDatabases} idle-scheduled databases. Times in ms.");
        Console.WriteLine($"{"databases",-26} | {"p50 late",8} | {"p99 late",8} | {"max late",8} | {"rows/s",8}");
        Figures alone;
        await using (var database = await TestDatabase.CreateAsync())
        await using (var dataSource = NpgsqlDataSource.Create(database.ConnectionString))
        {
            alone = await ProcyonAsync(database, dataSource, delayed, dueNow);
        }
        Print("1", alone);
        Figures crowded;
        await using (var database = await TestDatabase.CreateAsync())
        await using (var dataSource = NpgsqlDataSource.Create(database.ConnectionString))
        {
            var publishing = Stopwatch.StartNew();
            await IdleDatabases.CreateAsync(database, idleDatabases);
            Console.Error.WriteLine($"published {idleDatabases} idle databases in {publishing.Elapsed.TotalSeconds:0.0} s");
            crowded = await ProcyonAsync(database, dataSource, delayed, dueNow);
        }
        Print($"1 + {idleDatabases} idle", crowded);
        Console.WriteLine(
            $"with {idleDatabases} idle / alone: p50 late {crowded.Late[0] / alone.Late[0]:0.00}×, p99 late {crowded.Late[1] / alone.Late[1]:0.00}×, "
            + $"max late {crowded.Late[2] / alone.Late[2]:0.00}×, rows/s {crowded.RowsPerSecond / alone.RowsPerSecond:0.00}×");
        var benchmark = $"scheduler beside {idleDatabases:N0} idle-scheduled databases";
        Summary.Write(benchmark, $"p99 ms late, {delayed:N0} rows over {Spread.TotalSeconds:0} s", crowded.Late[1], "alone", alone.Late[1]);
        Summary.Write(benchmark, $"rows/s, {dueNow:N0} due at once", crowded.RowsPerSecond, "alone", alone.RowsPerSecond);
        return 0;
    }

    private static async Task<Figures> ProcyonAsync(TestDatabase database, NpgsqlDataSource dataSource, int delayed, int dueNow)
    {
        await using var server = await TestServer.StartAsync(database);
        (await server.PublishAsync("ledger", "ledger")).EnsureSuccessStatusCode();
        (await server.CallAsync("ledger", "schedule_hits", $"[{WarmUp}, 0, 500]")).EnsureSuccessStatusCode();
        await WaitForAsync(dataSource, "SELECT count(*) FROM db_ledger.hit_log", WarmUp);
        await ExecuteAsync(dataSource, "TRUNCATE db_ledger.hit_log");

        (await server.CallAsync("ledger", "schedule_hits", $"[{delayed}, {Lead.TotalMilliseconds}, {Spread.TotalMilliseconds}]")).EnsureSuccessStatusCode();
        await WaitForAsync(dataSource, "SELECT count(*) FROM db_ledger.hit_log", delayed);
        var late = await LatenessAsync(dataSource, "db_ledger.hit_log");

        // The rows become due when the scheduling reducer commits, just before it answers.
        (await server.CallAsync("ledger", "schedule_hits", $"[{dueNow}, 0, 0]")).EnsureSuccessStatusCode();
        var firing = Stopwatch.StartNew();
        await WaitForAsync(dataSource, "SELECT count(*) FROM db_ledger.hit_log", delayed + dueNow);
        return new Figures(late, dueNow / firing.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// Hangfire as a latency-minded deployment would set it up: its default worker count
    /// (5 per core), schedules and queues polled every 100 ms (defaults: 15 s and 15 s).
    /// </summary>
    private static async Task<Figures> HangfireAsync(TestDatabase database, NpgsqlDataSource dataSource, int delayed, int dueNow)
    {
        await ExecuteAsync(dataSource, "CREATE TABLE hangfire_hit_log (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, hit bigint NOT NULL, due timestamptz NOT NULL, ran timestamptz NOT NULL)");
        HangfireHits.DataSource = dataSource;
        var storageOptions = new PostgreSqlStorageOptions { QueuePollInterval = TimeSpan.FromMilliseconds(100), PrepareSchemaIfNecessary = true };
        var storage = new PostgreSqlStorage(new NpgsqlConnectionFactory(database.ConnectionString, storageOptions), storageOptions);
        var client = new BackgroundJobClient(storage);
        var serverOptions = new BackgroundJobServerOptions { WorkerCount = Environment.ProcessorCount * 5, SchedulePollingInterval = TimeSpan.FromMilliseconds(100) };
        // One server throughout: a server disposed while it holds Hangfire's scheduler lock leaves
        // the lock behind until DistributedLockTimeout (10 min), and delayed jobs wait for it.
        using var server = new BackgroundJobServer(serverOptions, storage);

        // Warm up, and learn how long creating the delayed jobs takes, so none is due before it exists.
        var creating = Stopwatch.StartNew();
        await ParallelAsync(WarmUp, i => client.Enqueue(() => HangfireHits.RecordAsync(i, DateTimeOffset.UtcNow)));
        var creation = creating.Elapsed * delayed / WarmUp;
        await WaitForAsync(dataSource, "SELECT count(*) FROM hangfire_hit_log", WarmUp);
        await ExecuteAsync(dataSource, "TRUNCATE hangfire_hit_log");

        var start = DateTimeOffset.UtcNow + creation * 1.5 + TimeSpan.FromSeconds(2);
        await ParallelAsync(delayed, i =>
        {
            var due = start + Spread * i / delayed;
            client.Schedule(() => HangfireHits.RecordAsync(i, due), due);
        });
        if (DateTimeOffset.UtcNow > start)
        {
            Console.Error.WriteLine("warning: Hangfire's jobs were still being created when the first came due");
        }
        await WaitForAsync(dataSource, "SELECT count(*) FROM hangfire_hit_log", delayed);
        var late = await LatenessAsync(dataSource, "hangfire_hit_log");

        // Enqueued on a queue no server takes yet, then a server for it starts: the same start
        // line as Procyon's commit.
        const string Later = "later";
        await ParallelAsync(dueNow, i => client.Create(() => HangfireHits.RecordAsync(i, DateTimeOffset.UtcNow), new EnqueuedState(Later)));
        var firing = Stopwatch.StartNew();
        using (new BackgroundJobServer(new BackgroundJobServerOptions { WorkerCount = serverOptions.WorkerCount, Queues = [Later] }, storage))
        {
            await WaitForAsync(dataSource, "SELECT count(*) FROM hangfire_hit_log", delayed + dueNow);
            return new Figures(late, dueNow / firing.Elapsed.TotalSeconds);
        }
    }

    private static async Task ExecuteAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }

    private static Task ParallelAsync(int count, Action<int> create) =>
        Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = 16 }, (i, _) =>
        {
            create(i);
            return ValueTask.CompletedTask;
        });

    private static async Task WaitForAsync(NpgsqlDataSource dataSource, string countSql, long expected)
    {
        await using var count = dataSource.CreateCommand(countSql);
        var waited = Stopwatch.StartNew();
        while ((long)(await count.ExecuteScalarAsync())! < expected)
        {
            if (waited.Elapsed > TimeSpan.FromMinutes(20))
            {
                throw new TimeoutException($"{countSql} did not reach {expected} in 20 minutes");
            }
            await Task.Delay(10);
        }
    }

    /// <summary>p50, p99 and max of <c>ran - due</c> in milliseconds.</summary>
    private static async Task<double[]> LatenessAsync(NpgsqlDataSource dataSource, string table)
    {
        await using var command = dataSource.CreateCommand(
            $"SELECT percentile_cont(ARRAY[0.5, 0.99, 1.0]) WITHIN GROUP (ORDER BY extract(epoch FROM ran - due) * 1000) FROM {table}");
        return (double[])(await command.ExecuteScalarAsync())!;
    }

    private static void Print(string name, Figures figures) =>
        Console.WriteLine($"{name,-26} | {figures.Late[0],8:0.0} | {figures.Late[1],8:0.0} | {figures.Late[2],8:0.0} | {figures.RowsPerSecond,8:0}");

    private sealed record Figures(double[] Late, double RowsPerSecond);
}

/// <summary>Hangfire's job: the row Procyon's <c>on_hit</c> reducer inserts.</summary>
public static class HangfireHits
{
    internal static NpgsqlDataSource? DataSource { get; set; }

    public static async Task RecordAsync(long hit, DateTimeOffset due)
    {
        var ran = DateTimeOffset.UtcNow;
        await using var command = DataSource!.CreateCommand("INSERT INTO hangfire_hit_log (hit, due, ran) VALUES ($1, $2, $3)");
        command.Parameters.AddWithValue(hit);
        command.Parameters.AddWithValue(due);
        command.Parameters.AddWithValue(ran);
        await command.ExecuteNonQueryAsync();
    }
}
