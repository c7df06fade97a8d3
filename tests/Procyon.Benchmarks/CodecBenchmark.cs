using System.Buffers;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Procyon.Sats;
using Procyon.Testing;

namespace Procyon.Benchmarks;

/// <summary>
/// The value layer's cost: an example-module Order goes JSON → BSATN → JSON through Procyon's
/// codec (what every call does to its arguments and result), beside System.Text.Json reading
/// the same JSON into an equivalent POCO and writing it back.
/// </summary>
internal static class CodecBenchmark
{
    private const string Order = """
        {"id": 7, "customer": "0101010101010101010101010101010101010101010101010101010101010101",
         "items": [{"name": "tea", "qty": 2, "tags": ["hot", "green"]}, {"name": "cake", "qty": 3, "tags": []},
                   {"name": "scone", "qty": 1, "tags": ["jam", "cream", "warm"]}],
         "note": "ring twice", "status": {"Shipped": "2026-01-01T00:00:00.000000Z"},
         "placed": "2025-12-31T23:59:59.999999Z", "total": 12.5}
        """;

    public static async Task<int> RunAsync(int iterations)
    {
        var typespace = (await Describer.LoadAsync("example")).Description.Typespace;
        var type = AlgebraicType.Ref(typespace.Names.Single(n => n.Value == "Order").Key);
        var utf8 = Encoding.UTF8.GetBytes(Order);
        var writer = new BsatnWriter();
        var output = new ArrayBufferWriter<byte>();
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web);

        int Procyon()
        {
            using var json = JsonDocument.Parse(utf8);
            writer.Clear();
            JsonToBsatn.Write(json.RootElement, type, typespace, writer);
            return BsatnToJson.Convert(writer.WrittenSpan, type, typespace).Length;
        }

        int Poco()
        {
            var order = JsonSerializer.Deserialize<OrderPoco>(utf8, options)!;
            output.ResetWrittenCount();
            using var json = new Utf8JsonWriter(output);
            JsonSerializer.Serialize(json, order, options);
            return output.WrittenCount;
        }

        var procyon = Time(Procyon, iterations);
        var poco = Time(Poco, iterations);
        Console.WriteLine($"{"codec",-28} | {"ns per round trip",17} | {"round trips/s",13}");
        Console.WriteLine($"{"Procyon JSON→BSATN→JSON",-28} | {procyon,17:0} | {1e9 / procyon,13:0}");
        Console.WriteLine($"{"System.Text.Json POCO",-28} | {poco,17:0} | {1e9 / poco,13:0}");
        Console.WriteLine($"Procyon / System.Text.Json time: {procyon / poco:0.00}×");
        Summary.Write("codec, JSON → value → JSON", "µs per round trip", procyon / 1000, "System.Text.Json POCO", poco / 1000);
        return 0;
    }

    /// <summary>Nanoseconds per call, best of five runs after a warm-up.</summary>
    private static double Time(Func<int> body, int iterations)
    {
        var sink = 0;
        for (var i = 0; i < iterations / 10; i++)
        {
            sink += body();
        }
        var best = double.MaxValue;
        for (var run = 0; run < 5; run++)
        {
            var stopwatch = Stopwatch.StartNew();
            for (var i = 0; i < iterations; i++)
            {
                sink += body();
            }
            best = Math.Min(best, stopwatch.Elapsed.TotalNanoseconds / iterations);
        }
        GC.KeepAlive(sink);
        return best;
    }

    private sealed record ItemPoco(string Name, byte Qty, List<string> Tags);

    private sealed record OrderPoco(ulong Id, string Customer, List<ItemPoco> Items, string? Note, Dictionary<string, DateTimeOffset> Status, DateTimeOffset Placed, double Total);
}
