"""agentgym.rl.logprobs: the one-buffer logprob and entropy equal the autograd reference."""

import pytest
import torch

from agentgym.rl.logprobs import entropy, token_logprobs


@pytest.mark.parametrize("shape", [(3, 5, 11), (2, 7, 1000)])
def test_token_logprobs_value_and_gradient_match_log_softmax(shape):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, dtype=torch.float64, generator=gen) * 3
    target = torch.randint(0, shape[-1], shape[:-1], generator=gen)
    weight = torch.randn(shape[:-1], dtype=torch.float64, generator=gen)
    ours, ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    got = token_logprobs(ours, target)
    want = torch.log_softmax(ref, -1).gather(-1, target[..., None]).squeeze(-1)
    (got * weight).sum().backward()
    (want * weight).sum().backward()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(ours.grad, ref.grad)
    small = x[:1, :2, :7].clone().requires_grad_()
    assert torch.autograd.gradcheck(token_logprobs, (small, target[:1, :2] % 7))


def test_entropy_matches_the_definition_with_and_without_a_nucleus():
    x = torch.randn(2, 4, 50, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ref = torch.special.entr(x.softmax(-1)).sum(-1)
    torch.testing.assert_close(entropy(x), ref)
    x[..., :20] = float("-inf")  # outside the nucleus: probability 0
    torch.testing.assert_close(entropy(x, masked=True), torch.special.entr(x.softmax(-1)).sum(-1))
    uniform = torch.zeros(1, 1, 8)
    assert float(entropy(uniform)) == pytest.approx(torch.log(torch.tensor(8.0)).item())
