using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.SignalR.Client;
using Procyon.Runtime;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;
using static Procyon.Tests.Problems;

namespace Procyon.Tests;

/// <summary>Every type of the value layer, through HTTP and the hub, against the example module.</summary>
public sealed class TypedValuesTests(ServerFixture fixture) : ServerTest(fixture)
{
    private const string Everything = """
        {"flag": true, "i8": -8, "i16": -16, "i32": -32, "i64": "-9007199254740993",
         "i128": "-170141183460469231731687303715884105728", "u8": 255, "u16": 65535, "u32": 4294967295,
         "u64": "18446744073709551615", "u128": "340282366920938463463374607431768211455", "f32": 0.1,
         "f64": "-Infinity", "text": "h\u00e9llo \ud83d\ude00", "bytes": "deadbeef", "list": [1, 2, 3], "maybe": 7,
         "who": "00000000000000000000000000000000000000000000000000000000000000ff",
         "when": "2026-11-28T12:00:00.123456Z", "every": 1500000, "schedule": {"Time": "2026-11-28T12:00:00.000000Z"},
         "uuid": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "nothing": null}
        """;

    private const string Order = """
        {"id": 7, "customer": "0000000000000000000000000000000000000000000000000000000000000001",
         "items": [{"name": "tea", "qty": 2, "tags": ["hot"]}, {"name": "cake", "qty": 3, "tags": []}],
         "note": null, "status": {"Shipped": "2026-01-01T00:00:00.000000Z"}, "placed": "2025-12-31T23:59:59.999999Z", "total": 12.5}
        """;

    [Fact]
    public async Task A_value_of_every_type_comes_back_unchanged()
    {
        var response = await Server.CallAsync("example", "echo_everything", $"[{Everything}]");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        AssertSameJson(Everything, await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("\"i64\": \"-9007199254740993\"", "\"i64\": 12")]
    [InlineData("\"u64\": \"18446744073709551615\"", "\"u64\": \"12\"")]
    [InlineData("\"bytes\": \"deadbeef\"", "\"bytes\": \"0xDEADBEEF\"")]
    [InlineData("\"when\": \"2026-11-28T12:00:00.123456Z\"", "\"when\": 1795867200123456")]
    [InlineData("\"schedule\": {\"Time\": \"2026-11-28T12:00:00.000000Z\"}", "\"schedule\": {\"Interval\": 5}")]
    [InlineData("\"maybe\": 7", "\"maybe\": null")]
    [InlineData("\"uuid\": \"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\"", "\"uuid\": \"0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B\"")]
    [InlineData("\"f64\": \"-Infinity\"", "\"f64\": 1e300")]
    public async Task Alternative_spellings_are_accepted(string canonical, string alternative)
    {
        var response = await Server.CallAsync("example", "echo_everything", $"[{Everything.Replace(canonical, alternative, StringComparison.Ordinal)}]");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Safe_64_bit_integers_come_back_as_numbers_and_unsafe_ones_as_strings()
    {
        var body = Everything.Replace("\"u64\": \"18446744073709551615\"", "\"u64\": 9007199254740991", StringComparison.Ordinal);

        var value = await (await Server.CallAsync("example", "echo_everything", $"[{body}]")).Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal(JsonValueKind.Number, value.GetProperty("u64").ValueKind);
        Assert.Equal(JsonValueKind.String, value.GetProperty("i64").ValueKind);
    }

    [Fact]
    public async Task Nested_structs_enums_and_options_round_trip()
    {
        var response = await Server.CallAsync("example", "echo_order", $$"""{"order": {{Order}}}""");

        AssertSameJson(Order, await response.Content.ReadAsStringAsync());
        Assert.Equal("5", await (await Server.CallAsync("example", "count_units", $"[{Order}]")).Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Unit_variants_are_accepted_as_a_bare_name_and_written_as_an_object()
    {
        var pending = Order.Replace("{\"Shipped\": \"2026-01-01T00:00:00.000000Z\"}", "\"Pending\"", StringComparison.Ordinal);

        var value = await (await Server.CallAsync("example", "echo_order", $"[{pending}]")).Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal("""{"Pending":null}""", value.GetProperty("status").GetRawText());
    }

    [Fact]
    public async Task Recursive_types_work()
    {
        var response = await Server.CallAsync("example", "tree_sum", """[{"value": 1, "children": [{"value": 2, "children": [{"value": 3, "children": []}]}, {"value": 4, "children": []}]}]""");

        Assert.Equal("10", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("\"qty\": 3", "\"qty\": 300", "order.items[1].qty: expected u8 (0..255), got 300")]
    [InlineData("\"qty\": 3", "\"qty\": -1", "order.items[1].qty: expected u8 (0..255), got -1")]
    [InlineData("\"name\": \"tea\"", "\"name\": 5", "order.items[0].name: expected a string, got 5")]
    [InlineData("{\"Shipped\": \"2026-01-01T00:00:00.000000Z\"}", "{\"Lost\": null}", "order.status: ")]
    [InlineData("\"total\": 12.5", "\"total\": \"much\"", "order.total: expected f64")]
    [InlineData("\"id\": 7", "\"id\": 7.5", "order.id: expected u64")]
    [InlineData("\"placed\": \"2025-12-31T23:59:59.999999Z\"", "\"placed\": \"yesterday\"", "order.placed: ")]
    public async Task Bad_nested_values_return_400_naming_the_path_and_the_expectation(string valid, string invalid, string expected)
    {
        var body = $$"""{"order": {{Order.Replace(valid, invalid, StringComparison.Ordinal)}}}""";

        var problem = await AssertProblemAsync(await Server.CallAsync("example", "echo_order", body), HttpStatusCode.BadRequest);

        Assert.StartsWith(expected, problem.Detail(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Typed_values_round_trip_through_the_hub()
    {
        await using var hub = await Server.ConnectHubAsync();

        var result = await hub.InvokeAsync<JsonElement>("Call", "example", "echo_order", JsonDocument.Parse($"[{Order}]").RootElement, "typed");

        Assert.Equal("ok", result.GetProperty("status").GetString());
        AssertSameJson(Order, result.GetProperty("value").GetRawText());
    }

    [Fact]
    public async Task Random_values_of_every_parameter_type_round_trip_through_the_module()
    {
        var description = await DescribeExampleAsync();
        var random = new Random(20261129);
        var values = new RandomValues(random, description.Typespace);
        foreach (var name in (string[])["echo_everything", "echo_order", "echo_tree"])
        {
            var function = description.Find(name)!;
            for (var i = 0; i < 150; i++)
            {
                var value = values.Next(function.Parameters.Elements[0].Type);
                var json = value?.ToJsonString() ?? "null";

                var response = await Server.CallAsync("example", name, $"[{json}]");

                var body = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.OK, $"{name}({json}) → {(int)response.StatusCode} {body}");
                Assert.True(JsonNode.DeepEquals(value, JsonNode.Parse(body)), $"{name}: sent {json}, got {body}");
            }
        }
    }

    internal static async Task<ModuleDescription> DescribeExampleAsync() => (await Describer.LoadAsync("example")).Description;

    private static void AssertSameJson(string expected, string actual) =>
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), JsonNode.Parse(actual)), $"expected {expected}\nactual   {actual}");
}
