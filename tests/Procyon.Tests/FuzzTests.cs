using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Procyon.Tests.Infrastructure;

namespace Procyon.Tests;

/// <summary>Thousands of generated bodies: valid values with random damage, and plain garbage.</summary>
public sealed class FuzzTests(ServerFixture fixture) : ServerTest(fixture)
{
    private const int Bodies = 3000;

    /// <summary>Functions whose bodies cannot fail on a well-typed value, so any 500 is the host's fault.</summary>
    private static readonly string[] Functions = ["echo_order", "echo_everything", "echo_tree", "tree_sum", "count_units", "add"];

    [Fact]
    public async Task Random_bodies_never_yield_a_500_and_the_server_keeps_answering()
    {
        var description = await TypedValuesTests.DescribeExampleAsync();
        var random = new Random(4242);
        var values = new RandomValues(random, description.Typespace);
        var bodies = Enumerable.Range(0, Bodies).Select(_ =>
        {
            var function = Functions[random.Next(Functions.Length)];
            var parameters = description.Find(function)!.Parameters.Elements;
            var arguments = new JsonArray(parameters.Select(p => values.Next(p.Type)).ToArray());
            return (function, Body: random.Next(10) == 0 ? Garbage(random) : Damage(arguments, random).ToJsonString());
        }).ToList();
        var statuses = new Dictionary<HttpStatusCode, int>();

        foreach (var chunk in bodies.Chunk(16))
        {
            var responses = await Task.WhenAll(chunk.Select(async b => (b, Response: await Server.CallAsync("example", b.function, b.Body))));
            foreach (var (b, response) in responses)
            {
                var status = response.StatusCode;
                Assert.True(status is HttpStatusCode.OK or HttpStatusCode.BadRequest, $"{b.function}({b.Body}) → {(int)status}: {await response.Content.ReadAsStringAsync()}");
                statuses[status] = statuses.GetValueOrDefault(status) + 1;
            }
        }

        Assert.True(statuses.GetValueOrDefault(HttpStatusCode.OK) > Bodies / 20, "too few valid bodies: the fuzzer tests only the parser");
        Assert.True(statuses.GetValueOrDefault(HttpStatusCode.BadRequest) > Bodies / 2, "too few invalid bodies");
        Assert.Equal("5", await (await Server.CallAsync("example", "add", "[2,3]")).Content.ReadAsStringAsync());
    }

    /// <summary>Replaces, removes or adds a few nodes anywhere in the tree.</summary>
    private static JsonNode Damage(JsonNode root, Random random)
    {
        for (var hits = random.Next(0, 4); hits > 0; hits--)
        {
            var nodes = Descendants(root).ToList();
            var target = nodes[random.Next(nodes.Count)];
            switch (target)
            {
                case JsonObject obj when random.Next(3) == 0 && obj.Count > 0:
                    obj.Remove(obj.ElementAt(random.Next(obj.Count)).Key);
                    break;
                case JsonObject obj when random.Next(2) == 0:
                    obj[$"extra{random.Next(100)}"] = Junk(random, 0);
                    break;
                case JsonArray array when random.Next(2) == 0:
                    array.Add(Junk(random, 0));
                    break;
                default:
                    Replace(root, target, Junk(random, 0));
                    break;
            }
        }
        return root;
    }

    private static IEnumerable<JsonNode> Descendants(JsonNode node)
    {
        yield return node;
        IEnumerable<JsonNode?> children = node switch
        {
            JsonObject obj => obj.Select(p => p.Value),
            JsonArray array => array,
            _ => [],
        };
        foreach (var child in children.OfType<JsonNode>().SelectMany(Descendants))
        {
            yield return child;
        }
    }

    private static void Replace(JsonNode root, JsonNode target, JsonNode? replacement)
    {
        switch (target.Parent)
        {
            case JsonObject obj:
                obj[target.GetPropertyName()] = replacement;
                break;
            case JsonArray array:
                array[target.GetElementIndex()] = replacement;
                break;
            default:
                if (root is JsonArray rootArray)
                {
                    rootArray.Clear();
                }
                break;
        }
    }

    private static JsonNode? Junk(Random random, int depth) => random.Next(depth > 2 ? 9 : 11) switch
    {
        0 => null,
        1 => random.Next(2) == 0,
        2 => random.NextInt64(long.MinValue, long.MaxValue),
        3 => JsonNode.Parse("1" + new string('0', random.Next(1, 60))),
        4 => random.NextDouble() * Math.Pow(10, random.Next(-300, 300)),
        5 => "",
        6 => new string((char)random.Next(0x20, 0x7f), random.Next(1, 80)),
        7 => random.Next(2) == 0 ? "NaN" : "-1",
        8 => JsonNode.Parse("-0.0"),
        9 => new JsonArray(Enumerable.Range(0, random.Next(0, 4)).Select(_ => Junk(random, depth + 1)).ToArray()),
        _ => new JsonObject(Enumerable.Range(0, random.Next(0, 4)).Select(i => KeyValuePair.Create($"k{i}", Junk(random, depth + 1)))),
    };

    private static string Garbage(Random random)
    {
        var bytes = new byte[random.Next(0, 64)];
        random.NextBytes(bytes);
        return random.Next(2) == 0 ? Encoding.Latin1.GetString(bytes) : "[" + new string('[', random.Next(0, 200));
    }
}
