using System.Net;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;
using static Procyon.Tests.Problems;

namespace Procyon.Tests;

public sealed class BadInputTests(ServerFixture fixture) : ServerTest(fixture)
{
    [Fact]
    public async Task Call_to_unknown_database_returns_404_problem()
    {
        var problem = await AssertProblemAsync(await Server.CallAsync("nowhere", "add", "[1,2]"), HttpStatusCode.NotFound);

        Assert.Contains("nowhere", problem.Detail());
    }

    [Fact]
    public async Task Call_to_unknown_function_returns_404_problem()
    {
        var problem = await AssertProblemAsync(await Server.CallAsync("example", "subtract", "[1,2]"), HttpStatusCode.NotFound);

        Assert.Contains("subtract", problem.Detail());
    }

    [Fact]
    public async Task Schema_and_logs_of_unknown_database_return_404_problem()
    {
        await AssertProblemAsync(await Server.Http.GetAsync("/v1/databases/nowhere/schema"), HttpStatusCode.NotFound);
        await AssertProblemAsync(await Server.Http.GetAsync("/v1/databases/nowhere/logs"), HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData("[1]", "expected 2 arguments")]
    [InlineData("[1,2,3]", "expected 2 arguments")]
    [InlineData("""[1,"two"]""", "b: expected i32")]
    [InlineData("""[1.5,2]""", "a: expected i32")]
    [InlineData("""[2147483648,2]""", "a: expected i32")]
    [InlineData("""{"a":1}""", "b")]
    [InlineData("""{"a":1,"b":2,"c":3}""", "c")]
    [InlineData("""{"a":1,"a":2,"b":3}""", "argument \"a\" is given more than once")]
    [InlineData("\"1,2\"", "expected the arguments as a JSON array or object")]
    public async Task Call_with_wrong_arguments_returns_400_naming_the_parameter(string body, string expected)
    {
        var problem = await AssertProblemAsync(await Server.CallAsync("example", "add", body), HttpStatusCode.BadRequest);

        Assert.Contains(expected, problem.Detail());
    }

    [Theory]
    [InlineData("[1,2")]
    [InlineData("add(1,2)")]
    [InlineData("[1,2] trailing")]
    public async Task Call_with_a_body_that_is_not_JSON_returns_400(string body)
    {
        var problem = await AssertProblemAsync(await Server.CallAsync("example", "add", body), HttpStatusCode.BadRequest);

        Assert.Contains("not valid JSON", problem.Detail());
    }

    [Fact]
    public async Task Call_with_an_oversized_body_returns_413()
    {
        var body = "[" + string.Join(",", Enumerable.Repeat("1", 600_000)) + "]";

        await AssertProblemAsync(await Server.CallAsync("example", "add", body), HttpStatusCode.RequestEntityTooLarge);
    }

    [Fact]
    public async Task Publishing_bytes_that_are_not_wasm_returns_400_and_the_old_module_keeps_serving()
    {
        var problem = await AssertProblemAsync(await Server.PublishBytesAsync("example", "not a module"u8.ToArray()), HttpStatusCode.BadRequest);

        Assert.Contains("not a valid WebAssembly module", problem.Detail());
        Assert.Equal("5", await (await Server.CallAsync("example", "add", "[2,3]")).Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Publishing_a_module_with_imports_the_host_lacks_returns_400_naming_them()
    {
        var wasm = Wasmtime.Module.ConvertText("""
            (module
              (import "env" "launch_missiles" (func (param i32)))
              (memory (export "memory") 1))
            """);

        var problem = await AssertProblemAsync(await Server.PublishBytesAsync("imports", wasm), HttpStatusCode.BadRequest);

        Assert.Contains("env.launch_missiles", problem.Detail());
        await AssertProblemAsync(await Server.Http.GetAsync("/v1/databases/imports/schema"), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Publishing_a_plain_wasm_module_without_the_SDK_returns_400()
    {
        var wasm = Wasmtime.Module.ConvertText("""(module (memory (export "memory") 1) (func (export "run")))""");

        var problem = await AssertProblemAsync(await Server.PublishBytesAsync("plain", wasm), HttpStatusCode.BadRequest);

        Assert.Contains("__procyon_describe__", problem.Detail());
    }

    [Theory]
    [InlineData("Has-Capitals")]
    [InlineData("-dash-first")]
    [InlineData("a.b")]
    public async Task Invalid_database_names_return_400(string name)
    {
        var problem = await AssertProblemAsync(await Server.PublishBytesAsync(name, [0, 97, 115, 109]), HttpStatusCode.BadRequest);

        Assert.Contains("not a valid database name", problem.Detail());
    }

    [Fact]
    public async Task Panic_returns_500_with_the_message_and_the_next_call_succeeds()
    {
        var problem = await AssertProblemAsync(await Server.CallAsync("faulty", "panics", """["the gauge reads 42"]"""), HttpStatusCode.InternalServerError);

        Assert.Contains("the gauge reads 42", problem.Detail());
        Assert.Contains("src/lib.rs", problem.Detail());
        await AssertFaultyAddStillAnswersAsync();
    }

    [Fact]
    public async Task Panic_after_a_sleep_returns_500_and_the_next_call_succeeds()
    {
        var problem = await AssertProblemAsync(await Server.CallAsync("faulty", "panics_after_sleep", "[50]"), HttpStatusCode.InternalServerError);

        Assert.Contains("gave up", problem.Detail());
        await AssertFaultyAddStillAnswersAsync();
    }
}
